package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/otpledger/otpledger/aggregates"
	"github.com/otpledger/otpledger/aggregates/ledger"
	"github.com/otpledger/otpledger/consumers"
	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/projections"
)

// claimsActor is the SYSTEM actor of the claims this command appends, as
// the customer master (channel CORE).
const claimsActor = "otpledger-claims"

// claimsCmd claims, for every customer profiled before R-ONE-PERSON, the
// real-name number of its profile (aggregates.ClaimRealName), so that no
// other customer number can claim it. It reports how many it claimed, how
// many held theirs already, and each customer number whose real-name number
// another customer number holds (a duplicate from before the rule, which the
// firm corrects) — customer numbers only, never a real-name number or its
// fingerprint. Run again, it claims nothing new.
func claimsCmd(ctx context.Context, cfg *config, stdout, stderr io.Writer) error {
	n, l, err := openLedger(ctx, cfg, stderr, writes)
	if err != nil {
		return err
	}
	defer n.close()
	var profiled []string // in the order of their first profile
	seen := map[string]bool{}
	err = consumers.ReadStream(ctx, n.j, 0, 0, func(items []projections.Item) error {
		for _, it := range items {
			for _, e := range it.Commit.Events { // a quarantined message has none: verify names it
				if e.Type() == events.TypeCustomerProfiled && !seen[e.Aggregate.Key] {
					seen[e.Aggregate.Key] = true
					profiled = append(profiled, e.Aggregate.Key)
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	meta := aggregates.Meta{Institution: l.Policy().HomeInstitution, Channel: events.ChannelCore,
		Actor: events.Actor{Role: events.RoleSystem, ID: claimsActor}}
	claimed, held := 0, 0
	var duplicates []string
	for _, no := range profiled {
		_, err := l.Customer(ctx, no, aggregates.ClaimRealName{Meta: meta})
		var re *aggregates.RuleError
		switch {
		case err == nil:
			claimed++
		case errors.Is(err, aggregates.ErrClaimed):
			held++
		case errors.As(err, &re) && re.Rule == aggregates.RuleOnePerson:
			duplicates = append(duplicates, no+": "+re.Message)
		default:
			return fmt.Errorf("claim customer %s: %w", no, err)
		}
	}
	fmt.Fprintf(stdout, "%d profiled customers: %d claimed now, %d held their claim, %d duplicates\n", len(profiled), claimed, held, len(duplicates))
	for _, d := range duplicates {
		fmt.Fprintln(stdout, d)
	}
	return nil
}

// openLedger opens the journal for mode and a ledger over it with the
// configured policy, for the commands that read or decide aggregates.
func openLedger(ctx context.Context, cfg *config, stderr io.Writer, mode journalUse) (*node, *ledger.Ledger, error) {
	pol, err := cfg.policy()
	if err != nil {
		return nil, nil, err
	}
	n, err := openJournal(ctx, cfg, newLogger("warn", stderr), mode)
	if err != nil {
		return nil, nil, err
	}
	l, err := ledger.New(n.j, ledger.Config{Policy: pol})
	if err != nil {
		n.close()
		return nil, nil, err
	}
	return n, l, nil
}
