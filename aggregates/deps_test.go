package aggregates

import (
	"testing"

	"github.com/otpledger/otpledger/internal/archtest"
)

// TestDomainIsPure: the domain (aggregates without its ledger) reaches no
// broker, database, network or process API: the deciders are pure.
// (os and net come in through github.com/google/uuid, which the domain
// uses for identifiers only.)
func TestDomainIsPure(t *testing.T) {
	archtest.ForbidDeps(t, ".", "github.com/nats-io", "github.com/jackc/pgx", "github.com/ThreeDotsLabs/watermill",
		"net/http", "os/exec", "github.com/otpledger/otpledger/events/journal",
		"github.com/otpledger/otpledger/projections", "github.com/otpledger/otpledger/aggregates/ledger")
}
