/* SPDX-License-Identifier: Apache-2.0 */
/* Stable names of the public enumerations, and the version string. */
#include "internal.h"

const char *mbx_isolation_name(mbx_isolation_t isolation)
{
	switch (isolation) {
	case MBX_ISOLATION_AUTO: return "auto";
	case MBX_ISOLATION_OS: return "os";
	case MBX_ISOLATION_WASM: return "wasm";
	case MBX_ISOLATION_MICROVM: return "microvm";
	default: return NULL;
	}
}

const char *mbx_trust_name(mbx_trust_t trust)
{
	switch (trust) {
	case MBX_TRUST_TRUSTED: return "trusted";
	case MBX_TRUST_SEMI_TRUSTED: return "semi";
	case MBX_TRUST_UNTRUSTED: return "untrusted";
	default: return NULL;
	}
}

const char *mbx_network_name(mbx_network_t network)
{
	switch (network) {
	case MBX_NETWORK_DENY_ALL: return "deny";
	case MBX_NETWORK_ALLOW_DOMAINS: return "allow-domains";
	case MBX_NETWORK_ALLOW_ALL: return "all";
	default: return NULL;
	}
}

const char *mbx_layer_name(uint32_t layer)
{
	switch (layer) {
	case MBX_LAYER_USER_NS: return "user-namespace";
	case MBX_LAYER_PID_NS: return "pid-namespace";
	case MBX_LAYER_MOUNT_NS: return "mount-namespace";
	case MBX_LAYER_NET_NS: return "network-namespace";
	case MBX_LAYER_IPC_NS: return "ipc-namespace";
	case MBX_LAYER_UTS_NS: return "uts-namespace";
	case MBX_LAYER_CGROUP_NS: return "cgroup-namespace";
	case MBX_LAYER_SECCOMP: return "seccomp";
	case MBX_LAYER_LANDLOCK: return "landlock";
	case MBX_LAYER_NO_NEW_PRIVS: return "no-new-privs";
	case MBX_LAYER_CAPS_DROPPED: return "capabilities";
	case MBX_LAYER_LIMITS: return "limits";
	case MBX_LAYER_VM: return "virtual-machine";
	case MBX_LAYER_VMM_JAIL: return "vmm-jail";
	default: return NULL;
	}
}

const char *mbx_version(void)
{
	return MBX_VERSION_STRING;
}
