package torture

import (
	"os/exec"
	"syscall"
)

// orphanProof makes the kernel SIGKILL cmd when the harness dies (a test
// binary killed at its timeout leaves no nodes or replicas behind).
func orphanProof(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
