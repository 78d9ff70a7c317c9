package journal

import "github.com/nats-io/nats.go/jetstream"

// StreamOf hands the external tests (package journal_test) the journal's
// stream, to try what the server must refuse (purge, delete).
func StreamOf(j *Journal) jetstream.Stream { return j.stream }
