/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Command-line splitting with shell-like quoting and no shell: words are
 * separated by blanks; 'single quotes' keep everything literally; "double
 * quotes" keep everything except that a backslash escapes ", \, $ and `;
 * outside quotes a backslash escapes any character, and backslash-newline is
 * removed. Nothing is expanded: `$HOME`, `*`, `|` and `>` are plain text.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct words {
	char **v;
	size_t n;
	size_t cap;
};

static int words_push(struct words *w, char *s)
{
	if (w->n + 2 > w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 8;
		char **nv = realloc(w->v, cap * sizeof(char *));

		if (nv == NULL)
			return -1;
		w->v = nv;
		w->cap = cap;
	}
	w->v[w->n++] = s;
	w->v[w->n] = NULL;
	return 0;
}

int mbx__cmdline_split(const char *line, char ***out, mbx_error **err)
{
	struct words w = { 0 };
	size_t len, i = 0, o;
	char *cur = NULL;

	*out = NULL;
	if (line == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "command is NULL");
	len = strlen(line);
	while (i < len) {
		int in_word = 0;

		while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\n' || line[i] == '\r'))
			i++;
		if (i >= len)
			break;
		/* A word is at most as long as the rest of the line. */
		cur = malloc(len - i + 1);
		if (cur == NULL)
			goto oom;
		o = 0;
		while (i < len) {
			char c = line[i];

			if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
				break;
			in_word = 1;
			if (c == '\'') {
				size_t start = ++i;

				while (i < len && line[i] != '\'')
					i++;
				if (i >= len)
					goto unterminated_single;
				memcpy(cur + o, line + start, i - start);
				o += i - start;
				i++;
			} else if (c == '"') {
				i++;
				while (i < len && line[i] != '"') {
					if (line[i] == '\\' && i + 1 < len &&
					    (line[i + 1] == '"' || line[i + 1] == '\\' || line[i + 1] == '$' || line[i + 1] == '`')) {
						cur[o++] = line[i + 1];
						i += 2;
					} else if (line[i] == '\\' && i + 1 < len && line[i + 1] == '\n') {
						i += 2;
					} else {
						cur[o++] = line[i++];
					}
				}
				if (i >= len)
					goto unterminated_double;
				i++;
			} else if (c == '\\') {
				if (i + 1 >= len)
					goto trailing_backslash;
				if (line[i + 1] != '\n')
					cur[o++] = line[i + 1];
				i += 2;
			} else {
				cur[o++] = c;
				i++;
			}
		}
		if (in_word) {
			cur[o] = '\0';
			if (words_push(&w, cur) < 0)
				goto oom;
			cur = NULL;
		} else {
			free(cur);
			cur = NULL;
		}
	}
	if (w.n == 0) {
		free(w.v);
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "command is empty: give a program to run");
	}
	*out = w.v;
	return MBX_OK;

unterminated_single:
	free(cur);
	mbx__strv_free(w.v);
	return mbx__error_set(err, MBX_EINVAL, 0, NULL, "command has an unterminated single quote");
unterminated_double:
	free(cur);
	mbx__strv_free(w.v);
	return mbx__error_set(err, MBX_EINVAL, 0, NULL, "command has an unterminated double quote");
trailing_backslash:
	free(cur);
	mbx__strv_free(w.v);
	return mbx__error_set(err, MBX_EINVAL, 0, NULL, "command ends with a lone backslash");
oom:
	free(cur);
	mbx__strv_free(w.v);
	return mbx__error_oom(err);
}
