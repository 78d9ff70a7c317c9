// Package ledger is otpledger's command service: load an aggregate (from the
// cache or its last message's snapshot, never by replaying its history),
// decide (pure, package aggregates), append with compare-and-set (package
// journal); on a conflict reload and try again, a bounded number of times.
//
// A [Ledger] is safe for concurrent use; producer services may embed it
// in-process, the HTTP API wraps it.
package ledger
