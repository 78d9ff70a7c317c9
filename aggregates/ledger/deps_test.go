package ledger

import (
	"testing"

	"github.com/otpledger/otpledger/internal/archtest"
)

// TestLedgerLinksNoServer: a producer embedding the ledger links the NATS
// client, never a NATS server (package embedded holds that), a database
// driver or the HTTP layer.
func TestLedgerLinksNoServer(t *testing.T) {
	archtest.ForbidDeps(t, ".", "github.com/nats-io/nats-server", "github.com/otpledger/otpledger/events/journal/embedded",
		"github.com/jackc/pgx", "github.com/otpledger/otpledger/internal/httpapi", "github.com/otpledger/otpledger/projections")
}
