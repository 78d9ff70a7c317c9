package torture

import (
	"fmt"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// Lock is the error count at which a device is locked (domain.md R-HW-LOCK).
const Lock = 10

// deviceState is the model's state of one device.
type deviceState struct {
	Count   int
	Version uint64
}

func (s deviceState) String() string {
	return fmt.Sprintf("count %d locked %v v%d", s.Count, s.Count >= Lock, s.Version)
}

// DeviceModel is the sequential specification of a device's error count,
// partitioned per device: an increment below the lock is accepted at the
// next version and counts one more; at the lock it is refused R-HW-LOCK and
// changes nothing; a reset is accepted at the next version and sets the
// count to 0; a read answers the count, the lock and the version. The
// registration before the run sets the version its answer named. An
// operation whose outcome is unknown takes the step its input implies with
// any output: [Check] gives it a return after every other operation's, so
// that it may be linearized anywhere after its call — or, equivalently, not
// at all.
var DeviceModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		for _, o := range history {
			d := o.Input.(Op).Device
			by[d] = append(by[d], o)
		}
		devices := make([]string, 0, len(by))
		for d := range by {
			devices = append(devices, d)
		}
		sort.Strings(devices)
		out := make([][]porcupine.Operation, 0, len(by))
		for _, d := range devices {
			out = append(out, by[d])
		}
		return out
	},
	Init: func() any { return deviceState{} },
	Step: func(state, input, _ any) (bool, any) {
		return step(state.(deviceState), input.(Op))
	},
	Equal: func(a, b any) bool { return a.(deviceState) == b.(deviceState) },
	DescribeOperation: func(input, _ any) string {
		o := input.(Op)
		switch o.Outcome {
		case Refused:
			return fmt.Sprintf("%s %s → %s", o.Kind, o.Device, o.Rule)
		case Unknown:
			return fmt.Sprintf("%s %s → ?", o.Kind, o.Device)
		}
		if o.Kind == Read {
			return fmt.Sprintf("read %s → count %d locked %v v%d", o.Device, o.Count, o.Locked, o.Version)
		}
		return fmt.Sprintf("%s %s → v%d", o.Kind, o.Device, o.Version)
	},
	DescribeState: func(state any) string { return state.(deviceState).String() },
	DescribeOperationMetadata: func(info any) string {
		o := info.(Op)
		return fmt.Sprintf("key %s via %v %s", o.Key, o.Attempts, o.Err)
	},
}

// step is the model's transition: whether o's outcome is possible in s, and
// the state after it.
func step(s deviceState, o Op) (bool, deviceState) {
	next := s
	switch o.Kind {
	case Register:
		return o.Outcome == Accepted, deviceState{Version: o.Version}
	case Increment:
		if s.Count >= Lock {
			return o.Outcome == Unknown || o.Outcome == Refused && o.Rule == "R-HW-LOCK", s
		}
		next = deviceState{Count: s.Count + 1, Version: s.Version + 1}
	case Reset:
		next = deviceState{Version: s.Version + 1}
	case Read:
		return o.Outcome == Unknown || o.Version == s.Version && o.Count == s.Count && o.Locked == (s.Count >= Lock), s
	default:
		return false, s
	}
	return o.Outcome == Unknown || o.Outcome == Accepted && o.Version == next.Version, next
}

// Verdict is what [Check] found.
type Verdict struct {
	Result porcupine.CheckResult // Ok, Illegal, or Unknown (the checker timed out)
	Info   porcupine.LinearizationInfo
	Ops    int // operations checked
}

// Check runs Porcupine over ops with [DeviceModel], for at most timeout.
// Failed operations (every attempt answered 503: nothing appended) are left
// out, as are reads without an answer; unknown commands return after every
// other operation.
func Check(ops []Op, timeout time.Duration) Verdict {
	var end int64
	for _, o := range ops {
		end = max(end, o.Call, o.Return)
	}
	var history []porcupine.Operation
	for _, o := range ops {
		if o.Outcome == Failed || o.Outcome == Unknown && o.Kind == Read {
			continue
		}
		ret := o.Return
		if o.Outcome == Unknown {
			ret = end + 1
		}
		history = append(history, porcupine.Operation{ClientId: o.Client, Input: o, Call: o.Call, Output: o, Return: ret, Metadata: o})
	}
	res, info := porcupine.CheckOperationsVerbose(DeviceModel, history, timeout)
	return Verdict{Result: res, Info: info, Ops: len(history)}
}

// Visualize writes Porcupine's HTML visualization of v to path.
func (v Verdict) Visualize(path string) error {
	return porcupine.VisualizePath(DeviceModel, v.Info, path)
}
