package consumers

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/otpledger/otpledger/projections"
)

// Progress is told how far a long job has come: done of total items.
type Progress func(done, total uint64)

// Fold reads the whole stream (up to its last sequence when Fold starts)
// into a new memory store, reporting progress.
func Fold(ctx context.Context, js jetstream.JetStream, stream string, progress Progress) (*projections.Memory, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("fold stream: %w", err)
	}
	total := s.CachedInfo().State.LastSeq
	m := projections.NewMemory()
	var done uint64
	err = ReadStream(ctx, js, stream, 0, total, func(items []projections.Item) error {
		done += uint64(len(items))
		if progress != nil {
			progress(done, total)
		}
		return m.Apply(ctx, items)
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// catchUp reads the stream after a rebuilt store's position into it.
func catchUp(js jetstream.JetStream, stream string) projections.CatchUp {
	return func(ctx context.Context, from uint64, apply func([]projections.Item) error) error {
		return ReadStream(ctx, js, stream, from, 0, apply)
	}
}

// RebuildMemory folds the stream into a new memory store and swaps it into
// target atomically, with whatever the live projector applied meanwhile.
func RebuildMemory(ctx context.Context, js jetstream.JetStream, stream string, target *projections.Memory, progress Progress) error {
	built, err := Fold(ctx, js, stream, progress)
	if err != nil {
		return err
	}
	return target.Replace(ctx, built, catchUp(js, stream))
}

// Rebuild folds the stream in memory, COPYs the views into a shadow schema
// and swaps it in atomically (see [projections.Postgres.Replace]). A rebuild
// interrupted after its COPY resumes at the swap; one interrupted before
// folds again (the fold is the fast part).
func Rebuild(ctx context.Context, js jetstream.JetStream, stream string, target *projections.Postgres, progress Progress) error {
	if resumed, err := target.Resume(ctx, catchUp(js, stream)); resumed || err != nil {
		return err
	}
	built, err := Fold(ctx, js, stream, progress)
	if err != nil {
		return err
	}
	return target.Replace(ctx, built, catchUp(js, stream))
}

// Lag returns how far store is behind the stream: the stream's last
// sequence minus the store's checkpoint (readiness and metrics report it).
func Lag(ctx context.Context, js jetstream.JetStream, stream string, store projections.Writer) (uint64, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("lag: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("lag: %w", err)
	}
	pos, err := store.Position(ctx)
	if err != nil {
		return 0, fmt.Errorf("lag: %w", err)
	}
	if pos >= info.State.LastSeq {
		return 0, nil
	}
	return info.State.LastSeq - pos, nil
}
