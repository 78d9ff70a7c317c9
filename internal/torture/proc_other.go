//go:build !linux

package torture

import "os/exec"

// orphanProof does nothing where the kernel has no parent-death signal.
func orphanProof(*exec.Cmd) {}
