// Package torture is the ledger's fault harness (issue 26): a three-node NATS
// cluster started from deploy/nats/cluster.conf and two or more `serve`
// replicas on loopback ports, clients that record every operation they make
// through the Go client (package client) — invoke and return times on a
// monotonic clock, input, output, or unknown after a timeout — with an
// Idempotency-Key per operation retried across replicas, and nemeses that
// SIGKILL or SIGSTOP nodes, the stream leader and replicas, chosen at random
// from a printed seed.
//
// Its checkers judge the recorded history:
//   - [Check] runs Porcupine over each device's operations with [DeviceModel]
//     (error count, locked at 10 per R-HW-LOCK, version); an operation whose
//     outcome is unknown may or may not have happened, as Porcupine models a
//     call that never returned;
//   - [Explain] names the operations no linearization can hold, by class
//     (stale refusals, stale reads), from the journal's order of each device;
//   - [Account] is Jepsen's accounting of acknowledged events against the
//     journal read back through package journal after healing: lost,
//     duplicated, unexpected, and stored commands answered as refused.
//
// [Run] ties them together; on a failure it saves the history, the seed and
// Porcupine's HTML visualization in the directory the caller names.
// Partitions, clock skew and bit flips of store files are not nemeses yet:
// they are added as more entries of [Nemeses].
package torture
