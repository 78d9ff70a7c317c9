// Package aggregates holds otpledger's domain rules as pure deciders over the
// two aggregates, [Device] (a hardware OTP generator, across every institution
// where it is registered) and [Customer] (a home-institution customer: its
// profile, its one OTP at home, its mobile OTP).
//
// Each aggregate is a value with two methods:
//
//	func (Device) Decide(DeviceCommand, now time.Time, *Policy) ([]events.Event, error)
//	func (Device) Evolve(events.Event) Device
//
// Decide validates a command against the state and the [Policy] and returns
// the events it produces or a [*RuleError] carrying the rule id of domain.md
// §4 (R-HW-LOCK, R-ONE-OTP, …). Evolve applies a fact and never fails. No
// function here does I/O, reads the clock, draws a random id, logs or keeps a
// global: time and ids arrive in the command, so the same state and command
// always give the same events. States are immutable values (maps are copied on
// write), safe to cache and share between goroutines.
//
// A registration or cancellation at the home institution decides over both
// aggregates at once: the command carries the customer's state and Decide
// returns one event for the device and one for the customer, which the journal
// appends in one atomic batch. So does a customer's first profile, with the
// claim of its real-name number on a third kind, [Person] (R-ONE-PERSON: the
// command carries the person's state). Every other command touches one
// aggregate.
//
// [Fold] rebuilds a state from its events, up to any instant.
package aggregates
