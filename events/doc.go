// Package events is otpledger's wire contract: the event envelope, one payload
// type per event type, the strict JSON codec, the upcaster registry for older
// schema versions, and the JetStream subject naming of the journal.
//
// # Envelope
//
// Every [Event] carries the envelope of domain.md §3 (id, type, schema_version,
// occurred_at, recorded_at, aggregate, institution, channel, actor, correlation
// and causation ids, idempotency key) and a typed [Payload]. The per-aggregate
// version is the count of that aggregate's events; the global order is the
// journal's stream sequence, which is not part of the encoded event.
//
// # Commits
//
// The unit written to the journal is a [Commit]: the one or more events that one
// command produced for one aggregate (a mobile reissue is a mobile_revoked and a
// mobile_issued on the customer), encoded together by [EncodeCommit] into one
// message so that they are stored atomically without a batch.
//
// # Subjects
//
// Each aggregate instance has its own subject, so that the journal can check
// the last sequence per subject (compare-and-set) and load one aggregate
// without scanning others:
//
//	otpledger.device.<vendor>.<serial>     hardware OTP device
//	otpledger.customer.<customer_no>       home-institution customer (mobile OTP, R-ONE-OTP)
//	otpledger.person.<fingerprint>         a real-name number's claim (R-ONE-PERSON), keyed by its keyed fingerprint, never the number
//
// Vendor, serial and customer number are restricted to [0-9A-Z] by their
// patterns ([ValidVendor], [ValidSerial], [ValidCustomerNo]), and a
// fingerprint to 64 lower-case hex digits, so they are always single,
// wildcard-free subject tokens. [SubjectAll] matches every aggregate.
//
// # Decoding
//
// [DecodeCommit] and [DecodeEvent] are strict: unknown fields, wrong JSON
// types, missing required fields, unknown event types and schema versions newer
// than the code are errors of type [*FieldError] naming the offending field
// (for example "events[0].payload.reason"). Older schema versions are upcast by
// the registered [Upcaster] chain before the payload is decoded; the stored
// bytes are never rewritten: a chained event read at an older version keeps
// them ([Event.Stored]) and encodes, hashes and exports as written.
//
// # Personal data
//
// Payloads never carry a real-name number or phone id in clear, only the keyed
// fingerprints and masked forms produced by package [github.com/otpledger/otpledger/events/pii].
package events
