/* SPDX-License-Identifier: Apache-2.0 */
/* Temporary: QEMU without a jail. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jail.h"

struct mbx_vm_jail {
	pid_t pid;
	int pidfd;
	int done;
	int wstatus;
};

int mbx__vm_jail_start(struct mbx_vm_jail **out, const struct mbx_vm_jail_spec *spec, mbx_error **err)
{
	struct mbx_vm_jail *j = calloc(1, sizeof(*j));
	pid_t parent = getpid();

	if (j == NULL)
		return mbx__error_oom(err);
	j->pid = fork();
	if (j->pid < 0) {
		free(j);
		return mbx__error_set(err, MBX_ESYS, errno, NULL, "fork");
	}
	if (j->pid == 0) {
		int null = open("/dev/null", O_RDWR);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		setsid();
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		execv(spec->argv[0], spec->argv);
		_exit(127);
	}
	j->pidfd = (int)syscall(SYS_pidfd_open, j->pid, 0);
	*out = j;
	return MBX_OK;
}

int mbx__vm_jail_poll_fd(struct mbx_vm_jail *j)
{
	return j->pidfd;
}

int mbx__vm_jail_exited(struct mbx_vm_jail *j, int *wstatus)
{
	if (!j->done && waitpid(j->pid, &j->wstatus, WNOHANG) == j->pid)
		j->done = 1;
	if (j->done && wstatus)
		*wstatus = j->wstatus;
	return j->done;
}

void mbx__vm_jail_stop(struct mbx_vm_jail *j)
{
	if (j == NULL)
		return;
	if (!j->done) {
		kill(j->pid, SIGKILL);
		waitpid(j->pid, NULL, 0);
	}
	if (j->pidfd >= 0)
		close(j->pidfd);
	free(j);
}
