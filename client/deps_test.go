package client_test

import (
	"testing"

	"github.com/otpledger/otpledger/internal/archtest"
)

// TestClientIsLight: a producer importing the client links no server, no
// database driver and no ledger.
func TestClientIsLight(t *testing.T) {
	archtest.ForbidDeps(t, ".", "github.com/nats-io", "github.com/jackc/pgx", "github.com/ThreeDotsLabs/watermill",
		"github.com/otpledger/otpledger/aggregates", "github.com/otpledger/otpledger/projections",
		"github.com/otpledger/otpledger/consumers", "github.com/otpledger/otpledger/events/journal")
}
