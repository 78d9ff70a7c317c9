// Package journal stores otpledger's events in one NATS JetStream stream:
// in order, never lost, never duplicated, never editable.
//
// # Stream
//
// [Open] provisions the stream idempotently (file storage, subjects
// otpledger.>, deny delete and purge, direct get, atomic batch publish, a
// 2-minute duplicate window, no maximum age) and refuses to start when an
// existing stream of that name conflicts, naming each conflicting setting;
// the duplicate window alone it sets rather than refuses. It also refuses a
// server older than 2.12, which cannot publish atomic batches.
//
// # Appends are compare-and-set
//
// Each aggregate instance has its own subject ([events.Subject]). [Journal.Append]
// publishes a [Record] with the expected last sequence of that subject (0: the
// aggregate must be new) and a Nats-Msg-Id, so a stale writer gets
// [ErrConflict] (JetStream codes 10071 and, on replicated streams, 10164) and
// a retried publish is deduplicated by the server ([ErrDuplicate]). One
// record is one message, atomic by itself even when its commit holds several
// events; two records (a home registration touches the device and the
// customer) go in one JetStream atomic batch, each message with its own
// expectation, so both are stored or neither is.
//
// # Loading
//
// Every message carries, in header [StateHeader], the snapshot of its
// aggregate's state after the commit (opaque bytes the caller encodes). So
// loading an aggregate is one direct last-message-by-subject lookup
// ([Journal.Last]), never a replay; [Journal.Read] replays a subject for
// audits and as-of states.
//
// # Durability
//
// [Durability] is a stated mode: [Fsync] (every acknowledged event is on
// disk; the server runs with sync_interval always), [Interval] (the NATS
// default: an acknowledged event survives a process crash, not a power loss,
// until the next sync, by default within 2 minutes), and [Replicated] (R3: an
// acknowledged event is on a majority of three servers). The journal
// provisions replicas from the mode; the server's sync setting belongs to the
// server ([EmbeddedConfig] sets it for the embedded default).
package journal
