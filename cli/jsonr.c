/* SPDX-License-Identifier: Apache-2.0 */
/* A small JSON reader; see jsonr.h. */
#include <stdlib.h>
#include <string.h>

#include "jsonr.h"

static const char *skip_ws(const char *p, const char *e)
{
	while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* After the string that starts at p (its opening quote), or NULL. */
static const char *scan_string(const char *p, const char *e)
{
	for (p++; p < e; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '"')
			return p + 1;
		if (c < 0x20)
			return NULL;
		if (c != '\\')
			continue;
		if (++p >= e)
			return NULL;
		switch (*p) {
		case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
			break;
		case 'u':
			if (e - p < 5)
				return NULL;
			for (int i = 1; i <= 4; i++)
				if (hexval(p[i]) < 0)
					return NULL;
			p += 4;
			break;
		default:
			return NULL;
		}
	}
	return NULL;
}

static const char *scan_digits(const char *p, const char *e)
{
	const char *start = p;

	while (p < e && *p >= '0' && *p <= '9')
		p++;
	return p == start ? NULL : p;
}

static const char *scan_number(const char *p, const char *e)
{
	if (p < e && *p == '-')
		p++;
	if (p < e && *p == '0')
		p++;
	else if (!(p = scan_digits(p, e)))
		return NULL;
	if (p < e && *p == '.' && !(p = scan_digits(p + 1, e)))
		return NULL;
	if (p < e && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < e && (*p == '+' || *p == '-'))
			p++;
		if (!(p = scan_digits(p, e)))
			return NULL;
	}
	return p;
}

static const char *scan_word(const char *p, const char *e, const char *word)
{
	size_t n = strlen(word);

	return (size_t)(e - p) >= n && memcmp(p, word, n) == 0 ? p + n : NULL;
}

/* One value at p (no whitespace before it) into *v; after it, or NULL. */
static const char *scan_value(const char *p, const char *e, int depth, struct jsonr_val *v)
{
	const char *q = NULL;

	if (p >= e)
		return NULL;
	v->s = p;
	switch (*p) {
	case '{':
	case '[': {
		char close = *p == '{' ? '}' : ']';
		struct jsonr_val inner;

		if (depth >= JSONR_MAX_DEPTH)
			return NULL;
		v->type = *p == '{' ? JSONR_OBJECT : JSONR_ARRAY;
		q = skip_ws(p + 1, e);
		if (q < e && *q == close) {
			q++;
			break;
		}
		for (;;) {
			if (v->type == JSONR_OBJECT) {
				if (q >= e || *q != '"' || !(q = scan_string(q, e)))
					return NULL;
				q = skip_ws(q, e);
				if (q >= e || *q != ':')
					return NULL;
				q = skip_ws(q + 1, e);
			}
			if (!(q = scan_value(q, e, depth + 1, &inner)))
				return NULL;
			q = skip_ws(q, e);
			if (q < e && *q == ',') {
				q = skip_ws(q + 1, e);
				continue;
			}
			if (q < e && *q == close) {
				q++;
				break;
			}
			return NULL;
		}
		break;
	}
	case '"':
		v->type = JSONR_STRING;
		q = scan_string(p, e);
		break;
	case 't':
		v->type = JSONR_BOOL;
		q = scan_word(p, e, "true");
		break;
	case 'f':
		v->type = JSONR_BOOL;
		q = scan_word(p, e, "false");
		break;
	case 'n':
		v->type = JSONR_NULL;
		q = scan_word(p, e, "null");
		break;
	default:
		v->type = JSONR_NUMBER;
		q = scan_number(p, e);
		break;
	}
	if (q)
		v->len = (size_t)(q - p);
	return q;
}

int jsonr_parse(const char *s, size_t len, struct jsonr_val *root)
{
	const char *e = s + len, *p;

	if (!s || !root)
		return -1;
	p = scan_value(skip_ws(s, e), e, 0, root);
	return p && skip_ws(p, e) == e ? 0 : -1;
}

static void put_utf8(char **o, unsigned long cp)
{
	unsigned char *u = (unsigned char *)*o;

	if (cp < 0x80) {
		*u++ = (unsigned char)cp;
	} else if (cp < 0x800) {
		*u++ = (unsigned char)(0xc0 | (cp >> 6));
		*u++ = (unsigned char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*u++ = (unsigned char)(0xe0 | (cp >> 12));
		*u++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		*u++ = (unsigned char)(0x80 | (cp & 0x3f));
	} else {
		*u++ = (unsigned char)(0xf0 | (cp >> 18));
		*u++ = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		*u++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		*u++ = (unsigned char)(0x80 | (cp & 0x3f));
	}
	*o = (char *)u;
}

static unsigned long hex4(const char *p)
{
	return (unsigned long)(hexval(p[0]) << 12 | hexval(p[1]) << 8 | hexval(p[2]) << 4 | hexval(p[3]));
}

/* Decodes the checked string text s[0, len) (quotes included) into out, which has room for len bytes. */
static size_t decode(const char *s, size_t len, char *out)
{
	const char *p = s + 1, *e = s + len - 1;
	char *o = out;

	while (p < e) {
		unsigned long cp;

		if (*p != '\\') {
			*o++ = *p++;
			continue;
		}
		p++;
		switch (*p++) {
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case 'u':
			cp = hex4(p);
			p += 4;
			if (cp >= 0xd800 && cp < 0xdc00 && e - p >= 6 && p[0] == '\\' && p[1] == 'u' &&
			    hex4(p + 2) >= 0xdc00 && hex4(p + 2) < 0xe000) {
				cp = 0x10000 + ((cp - 0xd800) << 10) + (hex4(p + 2) - 0xdc00);
				p += 6;
			} else if (cp >= 0xd800 && cp < 0xe000) {
				cp = 0xfffd;	/* a lone surrogate */
			}
			/* At most 4 bytes out for the 6 or 12 read. */
			put_utf8(&o, cp);
			break;
		default:
			*o++ = p[-1];	/* " \ / */
			break;
		}
	}
	return (size_t)(o - out);
}

int jsonr_get(const struct jsonr_val *obj, const char *key, struct jsonr_val *out)
{
	const char *p, *e;
	size_t klen;
	int found = 0;

	if (!obj || obj->type != JSONR_OBJECT || !key)
		return 0;
	klen = strlen(key);
	e = obj->s + obj->len - 1;	/* the closing brace */
	p = skip_ws(obj->s + 1, e);
	while (p < e) {
		struct jsonr_val k, v;
		char kbuf[256];
		int match = 0;

		if (!(p = scan_value(p, e, 0, &k)) || k.type != JSONR_STRING)
			return 0;
		if (k.len <= sizeof(kbuf))
			match = decode(k.s, k.len, kbuf) == klen && memcmp(kbuf, key, klen) == 0;
		p = skip_ws(skip_ws(p, e) + 1, e);	/* the colon */
		if (!(p = scan_value(p, e, 0, &v)))
			return 0;
		if (match) {
			*out = v;
			found = 1;
		}
		p = skip_ws(p, e);
		if (p < e && *p == ',')
			p = skip_ws(p + 1, e);
	}
	return found;
}

int jsonr_at(const struct jsonr_val *arr, size_t i, struct jsonr_val *out)
{
	const char *p, *e;
	size_t n = 0;

	if (!arr || arr->type != JSONR_ARRAY)
		return 0;
	e = arr->s + arr->len - 1;	/* the closing bracket */
	p = skip_ws(arr->s + 1, e);
	while (p < e) {
		struct jsonr_val v;

		if (!(p = scan_value(p, e, 0, &v)))
			return 0;
		if (n++ == i) {
			*out = v;
			return 1;
		}
		p = skip_ws(p, e);
		if (p < e && *p == ',')
			p = skip_ws(p + 1, e);
	}
	return 0;
}

int jsonr_string(const struct jsonr_val *v, char **out, size_t *outlen)
{
	if (!v || v->type != JSONR_STRING || v->len < 2)
		return -1;
	*out = malloc(v->len);
	if (!*out)
		return -1;
	*outlen = decode(v->s, v->len, *out);
	(*out)[*outlen] = '\0';
	return 0;
}

int jsonr_int64(const struct jsonr_val *v, int64_t *out)
{
	const char *p, *e;
	uint64_t n = 0, limit;
	int neg;

	if (!v || v->type != JSONR_NUMBER)
		return -1;
	p = v->s;
	e = v->s + v->len;
	neg = *p == '-';
	p += neg;
	limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; p < e; p++) {
		if (*p < '0' || *p > '9')
			return -1;	/* a fraction or an exponent */
		if (n > (limit - (uint64_t)(*p - '0')) / 10)
			return -1;
		n = n * 10 + (uint64_t)(*p - '0');
	}
	*out = neg ? (int64_t)(0 - n) : (int64_t)n;
	return 0;
}

int jsonr_true(const struct jsonr_val *v)
{
	return v && v->type == JSONR_BOOL && v->s[0] == 't';
}
