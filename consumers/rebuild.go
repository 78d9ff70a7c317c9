package consumers

import (
	"context"
	"fmt"

	"github.com/otpledger/otpledger/events/journal"

	"github.com/otpledger/otpledger/projections"
)

// Progress is told how far a long job has come: done of total items.
type Progress func(done, total uint64)

// Fold reads the whole stream (up to its last sequence when Fold starts)
// into a new memory store, reporting progress.
func Fold(ctx context.Context, j *journal.Journal, progress Progress) (*projections.Memory, error) {
	m := projections.NewMemory()
	if err := foldInto(ctx, j, m, progress); err != nil {
		return nil, err
	}
	return m, nil
}

// foldInto reads the whole stream (up to its last sequence when it starts)
// into m, reporting progress.
func foldInto(ctx context.Context, j *journal.Journal, m *projections.Memory, progress Progress) error {
	total, err := j.LastSequence(ctx)
	if err != nil {
		return fmt.Errorf("fold stream: %w", err)
	}
	var done uint64
	return ReadStream(ctx, j, 0, total, func(items []projections.Item) error {
		done += uint64(len(items))
		if progress != nil {
			progress(done, total)
		}
		return m.Apply(ctx, items)
	})
}

// catchUp reads the stream after a rebuilt store's position into it.
func catchUp(j *journal.Journal) projections.CatchUp {
	return func(ctx context.Context, from uint64, apply func([]projections.Item) error) error {
		return ReadStream(ctx, j, from, 0, apply)
	}
}

// RebuildMemory folds the stream into a new memory store and swaps it into
// target atomically, with whatever the live projector applied meanwhile.
func RebuildMemory(ctx context.Context, j *journal.Journal, target *projections.Memory, progress Progress) error {
	built, err := Fold(ctx, j, progress)
	if err != nil {
		return err
	}
	return target.Replace(ctx, built, catchUp(j))
}

// Rebuild folds the stream into a shadow schema — the history COPYed as the
// fold makes it, the other views after — and swaps it in atomically (see
// [projections.Build]). A rebuild interrupted after its COPY resumes at the
// swap; one interrupted before folds again.
func Rebuild(ctx context.Context, j *journal.Journal, target *projections.Postgres, progress Progress) error {
	if resumed, err := target.Resume(ctx, catchUp(j)); resumed || err != nil {
		return err
	}
	b, err := target.Build(ctx)
	if err != nil {
		return err
	}
	defer b.Close()
	if err := foldInto(ctx, j, b.Views(), progress); err != nil {
		return err
	}
	return b.Finish(ctx, catchUp(j))
}

// Lag returns how far store is behind the stream: the stream's last
// sequence minus the store's checkpoint (readiness and metrics report it).
func Lag(ctx context.Context, j *journal.Journal, store interface {
	Position(context.Context) (uint64, error)
}) (uint64, error) {
	last, err := j.LastSequence(ctx)
	if err != nil {
		return 0, fmt.Errorf("lag: %w", err)
	}
	pos, err := store.Position(ctx)
	if err != nil {
		return 0, fmt.Errorf("lag: %w", err)
	}
	if pos >= last {
		return 0, nil
	}
	return last - pos, nil
}
