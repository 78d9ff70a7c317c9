// Package torture is the ledger's fault harness (issue 26): a three-node NATS
// cluster started from deploy/nats/cluster.conf and two or more `serve`
// replicas on loopback ports, clients that record every operation they make
// through the Go client (package client) — invoke and return times on a
// monotonic clock, input, output, or unknown after a timeout — with an
// Idempotency-Key per operation retried across replicas, and nemeses chosen
// at random from a printed seed.
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
//
// Beyond the process faults of [Nemeses], [StoreNemeses] reach the nodes'
// stores (every node killed at once; a power loss rolling back what was not
// fsynced; bytes flipped in a follower's last message block) and
// [PartitionNemeses] cut nodes off the others' routes through loopback
// proxies. The nodes' sync_interval is NATS's default unless
// [Config].Sync sets it on the harness's copy of deploy/nats/cluster.conf.
// A replica's clock is not skewed: serve has no option that shifts it.
package torture
