package sandbox

import (
	"encoding/binary"
	"errors"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// A sandbox's command runs under a seccomp filter that bwrap installs
// just before it runs it (--seccomp): a deny list in the spirit of
// Docker's default profile, of the calls a task has no use for and that
// widen the kernel's attack surface. They fail with EPERM:
//
//   - mounts and namespaces: mount, umount2, pivot_root, the new mount
//     API, unshare, setns, and clone with a namespace flag (clone3, whose
//     flags a filter cannot read, answers ENOSYS, so that the C library
//     falls back to clone);
//   - the kernel's keyrings, eBPF, userfaultfd, io_uring and
//     perf_event_open;
//   - what only an administrator does: modules, kexec, reboot, swap,
//     accounting, the kernel log, quotas, the clock, handles to open
//     files by, I/O ports.
//
// Every call of another ABI than the native one (32-bit x86 on x86-64,
// x32) fails too, so that the list cannot be gone around.
//
// The program is written here with x/net/bpf's assembler rather than
// with a seccomp library: the one at hand lets every call of a foreign
// ABI through unfiltered.
var deniedSyscalls = append([]uint32{
	unix.SYS_MOUNT, unix.SYS_UMOUNT2, unix.SYS_PIVOT_ROOT, unix.SYS_FSOPEN, unix.SYS_FSCONFIG, unix.SYS_FSMOUNT,
	unix.SYS_FSPICK, unix.SYS_MOVE_MOUNT, unix.SYS_OPEN_TREE, unix.SYS_MOUNT_SETATTR, unix.SYS_UNSHARE, unix.SYS_SETNS,
	unix.SYS_KEYCTL, unix.SYS_ADD_KEY, unix.SYS_REQUEST_KEY, unix.SYS_BPF, unix.SYS_USERFAULTFD,
	unix.SYS_IO_URING_SETUP, unix.SYS_IO_URING_ENTER, unix.SYS_IO_URING_REGISTER, unix.SYS_PERF_EVENT_OPEN,
	unix.SYS_KEXEC_LOAD, unix.SYS_KEXEC_FILE_LOAD, unix.SYS_INIT_MODULE, unix.SYS_FINIT_MODULE, unix.SYS_DELETE_MODULE,
	unix.SYS_REBOOT, unix.SYS_SWAPON, unix.SYS_SWAPOFF, unix.SYS_ACCT, unix.SYS_SYSLOG, unix.SYS_QUOTACTL,
	unix.SYS_OPEN_BY_HANDLE_AT, unix.SYS_LOOKUP_DCOOKIE, unix.SYS_VHANGUP, unix.SYS_SETTIMEOFDAY,
	unix.SYS_CLOCK_SETTIME, unix.SYS_ADJTIMEX, unix.SYS_CLOCK_ADJTIME,
}, archDenied...)

// cloneNamespaces are clone's flags that make namespaces.
const cloneNamespaces = unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
	unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET

// seccomp_data's fields (linux/seccomp.h).
const (
	offNR    = 0
	offArch  = 4
	offArg0  = 16 // the low 32 bits on a little-endian machine
	x32Mask  = 0x40000000
	retAllow = unix.SECCOMP_RET_ALLOW
	retEPERM = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	retNOSYS = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
)

var errNoSeccomp = errors.New("no seccomp filter for this architecture")

// seccompFilter is the filter as bwrap's --seccomp reads it: the
// compiled program's sock_filter records.
func seccompFilter() ([]byte, error) {
	if auditArch == 0 || binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		return nil, errNoSeccomp
	}
	p := []bpf.Instruction{
		bpf.LoadAbsolute{Off: offArch, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: auditArch, SkipTrue: 1},
		bpf.RetConstant{Val: retEPERM}, // another ABI
		bpf.LoadAbsolute{Off: offNR, Size: 4},
	}
	if hasX32 {
		p = append(p, bpf.JumpIf{Cond: bpf.JumpLessThan, Val: x32Mask, SkipTrue: 1}, bpf.RetConstant{Val: retEPERM})
	}
	p = append(p,
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.SYS_CLONE3, SkipTrue: 1},
		bpf.RetConstant{Val: retNOSYS},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.SYS_CLONE, SkipTrue: 4},
		bpf.LoadAbsolute{Off: offArg0, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: cloneNamespaces, SkipFalse: 1},
		bpf.RetConstant{Val: retEPERM},
		bpf.RetConstant{Val: retAllow},
	)
	for i, nr := range deniedSyscalls {
		// Equal: over the checks left and the allow, to the refusal.
		p = append(p, bpf.JumpIf{Cond: bpf.JumpEqual, Val: nr, SkipTrue: uint8(len(deniedSyscalls) - i)})
	}
	p = append(p, bpf.RetConstant{Val: retAllow}, bpf.RetConstant{Val: retEPERM})
	raw, err := bpf.Assemble(p)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 8*len(raw))
	for _, r := range raw {
		out = binary.NativeEndian.AppendUint16(out, r.Op)
		out = append(out, r.Jt, r.Jf)
		out = binary.NativeEndian.AppendUint32(out, r.K)
	}
	return out, nil
}
