package consumers

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/events/journal/journaltest"
	"github.com/otpledger/otpledger/internal/streamgen"
	"github.com/otpledger/otpledger/projections"
)

// TestVerifyCleanStream: a stream the ledger wrote verifies clean.
func TestVerifyCleanStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	gen := e.publish(t, streamgen.Config{Events: 100_000, Devices: 5000, Customers: 2000, Seed: 11})
	rep, err := Verify(ctx, e.j, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 0 || rep.Events != uint64(gen.Events) {
		t.Fatalf("clean stream: %d events, findings %+v", rep.Events, rep.Findings[:min(5, len(rep.Findings))])
	}
}

// TestVerifyNamesTampering copies a stream into one without deny-delete,
// changing one event's payload, deleting one message and inserting one out
// of order: Verify names exactly those three places.
func TestVerifyNamesTampering(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gen := streamgen.Generate(streamgen.Config{Events: 3000, Devices: 100, Customers: 40, Seed: 12})
	nc := journaltest.Conn(t)
	forged := journaltest.Forge(t, nc, "COPY")
	// Pick an error increment to alter, a message to delete, and an earlier
	// message to replay later.
	alter := slices.IndexFunc(gen.Commits[1000:], func(c events.Commit) bool {
		p, ok := c.Events[0].Payload.(events.ErrorIncremented)
		return ok && p.CountAfter != 1 // so that setting it to 1 changes it
	}) + 1000
	deleted, replayed := 1500, 200
	var altered, insertedAt, deletedSeq uint64
	publish := func(c events.Commit) uint64 {
		data, err := events.EncodeCommit(c)
		if err != nil {
			t.Fatal(err)
		}
		return forged.Store(events.Subject(c.Aggregate()), data)
	}
	for i, c := range gen.Commits {
		if i == alter { // the count changed, the recorded hash left as it was
			ev := c.Events[0]
			p := ev.Payload.(events.ErrorIncremented)
			p.CountAfter = 1
			ev.Payload = p
			c = events.Commit{Events: []events.Event{ev}}
		}
		seq := publish(c)
		switch i {
		case alter:
			altered = seq
		case deleted:
			deletedSeq = seq
		case 2000:
			insertedAt = publish(gen.Commits[replayed])
		}
	}
	forged.Delete(deletedSeq)
	rep, err := Verify(ctx, journaltest.Open(t, nc, journal.Config{Stream: "COPY", ReadOnly: true}), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var places []uint64
	for _, f := range rep.Findings {
		places = append(places, f.Seq)
	}
	slices.Sort(places)
	want := []uint64{altered, deletedSeq, insertedAt}
	slices.Sort(want)
	if !slices.Equal(places, want) {
		out, _ := json.MarshalIndent(rep.Findings, "", "  ")
		t.Fatalf("findings at %v, want %v:\n%s", places, want, out)
	}
	t.Log(fmt.Sprint(rep.Findings))
}

// TestCheckpointsCatchConsistentForgery: signed checkpoints verify on the
// genuine stream; a copy whose forger recomputed every hash and chain link
// after changing one event passes the chain checks but fails the checkpoint.
func TestCheckpointsCatchConsistentForgery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, key, _ := ed25519.GenerateKey(nil)
	pub := key.Public().(ed25519.PublicKey)
	gen := streamgen.Generate(streamgen.Config{Events: 2000, Devices: 50, Customers: 20, Seed: 13})
	e := newEnv(t)
	half := len(gen.Commits) / 2
	for _, part := range [][]events.Commit{gen.Commits[:half], gen.Commits[half:]} {
		if err := streamgen.Publish(ctx, e.j, part); err != nil {
			t.Fatal(err)
		}
		if ok, err := AppendCheckpoint(ctx, e.j, key); err != nil || !ok {
			t.Fatalf("checkpoint: %v %v", ok, err)
		}
	}
	if ok, err := AppendCheckpoint(ctx, e.j, key); err != nil || ok {
		t.Fatalf("a checkpoint with nothing new: %v %v", ok, err)
	}
	rep, err := Verify(ctx, e.j, pub, nil)
	if err != nil || len(rep.Findings) != 0 || rep.Checkpoints != 2 {
		t.Fatalf("genuine stream: %+v %v", rep, err)
	}
	// Projections ignore checkpoints.
	mem, err := Fold(ctx, e.j, nil)
	if err != nil {
		t.Fatal(err)
	}
	if q, _ := mem.Quarantine(ctx); len(q) != 0 {
		t.Fatalf("checkpoints quarantined: %+v", q)
	}

	// The forger changes one early error increment and re-links that
	// aggregate's chain from there on, then copies the checkpoints as stored.
	forged := slices.Clone(gen.Commits)
	target := slices.IndexFunc(forged, func(c events.Commit) bool {
		p, ok := c.Events[0].Payload.(events.ErrorIncremented)
		return ok && p.CountAfter > 1
	})
	ref := forged[target].Aggregate()
	prev := forged[target].Events[0].PrevHash
	for i := target; i < len(forged); i++ {
		if forged[i].Aggregate() != ref {
			continue
		}
		evs := slices.Clone(forged[i].Events)
		if i == target {
			p := evs[0].Payload.(events.ErrorIncremented)
			p.CountAfter, p.Locked = 1, false
			evs[0].Payload = p
		}
		evs, prev, _ = events.Chain(prev, evs)
		forged[i] = events.Commit{Events: evs}
	}
	nc := journaltest.Conn(t)
	copied := journaltest.Forge(t, nc, "FORGED")
	var checkpoints [][]byte
	err = e.j.Scan(ctx, 0, 0, func(msgs []journal.Message) error {
		for _, m := range msgs {
			if m.Subject == events.SubjectCheckpoint {
				checkpoints = append(checkpoints, m.Data)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, part := range [][]events.Commit{forged[:half], forged[half:]} {
		for _, c := range part {
			data, err := events.EncodeCommit(c)
			if err != nil {
				t.Fatal(err)
			}
			copied.Store(events.Subject(c.Aggregate()), data)
		}
		copied.Store(events.SubjectCheckpoint, checkpoints[i])
	}
	rep, err = Verify(ctx, journaltest.Open(t, nc, journal.Config{Stream: "FORGED", ReadOnly: true}), pub, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 2 || rep.Findings[0].Kind != "checkpoint" || rep.Findings[1].Kind != "checkpoint" {
		t.Fatalf("consistent forgery: %+v", rep.Findings)
	}
}

// TestCheckpointsLandUnderLoad: with a writer appending all the while, each
// checkpoint lands (a few messages after the sequence it covers), a second
// signer racing it (another replica) never signs a stretch already signed, and
// the stream verifies with every checkpoint.
func TestCheckpointsLandUnderLoad(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, key, _ := ed25519.GenerateKey(nil)
	pub := key.Public().(ed25519.PublicKey)
	e := newEnv(t)
	gen := streamgen.Generate(streamgen.Config{Events: 8000, Devices: 500, Customers: 200, Seed: 14})
	done := make(chan error, 1)
	go func() {
		last := map[events.AggregateRef]uint64{}
		for _, c := range gen.Commits { // one message at a time, as commands arrive
			seqs, err := e.j.Append(ctx, journal.Record{Commit: c, Expect: last[c.Aggregate()]})
			if err != nil {
				done <- err
				return
			}
			last[c.Aggregate()] = seqs[0]
		}
		done <- nil
	}()
	landed, behind := 0, 0
	for writing := true; writing; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			writing = false
		default:
		}
		results := make(chan bool, 2)
		for range 2 { // two replicas' checkpointers at once
			go func() {
				ok, err := AppendCheckpoint(ctx, e.j, key)
				if err != nil {
					t.Error(err)
				}
				results <- ok
			}()
		}
		for range 2 {
			if <-results {
				landed++
			}
		}
	}
	var covered uint64
	err := e.j.Scan(ctx, 0, 0, func(msgs []journal.Message) error {
		for _, m := range msgs {
			var cp Checkpoint
			if m.Subject != events.SubjectCheckpoint || json.Unmarshal(m.Data, &cp) != nil {
				continue
			}
			if cp.Seq <= covered {
				t.Errorf("checkpoint at %d covers %d, already covered by an earlier one", m.Seq, cp.Seq)
			}
			covered = cp.Seq
			if cp.Seq < m.Seq-1 {
				behind++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(ctx, e.j, pub, nil)
	if err != nil || len(rep.Findings) != 0 || rep.Checkpoints != uint64(landed) || landed < 10 {
		t.Fatalf("%d checkpoints landed under load: %+v %v", landed, rep, err)
	}
	t.Logf("%d checkpoints landed while %d messages were appended, %d of them standing after messages they do not cover", landed, len(gen.Commits), behind)
	if behind == 0 {
		t.Error("no checkpoint stood behind later messages: the load did not race them")
	}
}

// TestCheckpointRules: what verify says of a checkpoint at sequence 100
// after one covering 90, per way it can be wrong.
func TestCheckpointRules(t *testing.T) {
	t.Parallel()
	_, key, _ := ed25519.GenerateKey(nil)
	_, other, _ := ed25519.GenerateKey(nil)
	hashes := new(recentHashes)
	var r runningHash
	for seq := uint64(1); seq < 100; seq++ {
		r.add(seq, []byte{byte(seq)})
		hashes.put(seq, r)
	}
	at := func(seq uint64) string { h, _ := hashes.at(seq); return hex.EncodeToString(h[:]) }
	sign := func(k ed25519.PrivateKey, seq uint64, running string) []byte {
		body, _ := json.Marshal(Checkpoint{Seq: seq, RunningHash: running, Signature: base64.StdEncoding.EncodeToString(ed25519.Sign(k, signedText(seq, running)))})
		return body
	}
	for _, c := range []struct {
		name string
		body []byte
		want string // "" for a good checkpoint
	}{
		{"right after what it covers", sign(key, 99, at(99)), ""},
		{"a few messages after", sign(key, 95, at(95)), ""},
		{"covering itself", sign(key, 100, at(99)), "stands at 100"},
		{"behind the previous one", sign(key, 89, at(89)), "after one covering 90"},
		{"covering no more than the previous one", sign(key, 90, at(90)), ""},
		{"another stream's hash", sign(key, 99, at(98)), "not the one it signed"},
		{"another key", sign(other, 99, at(99)), "signature"},
		{"unreadable", []byte("{"), "unreadable"},
	} {
		covers, problem := checkCheckpoint(100, 90, c.body, hashes, key.Public().(ed25519.PublicKey))
		if (c.want == "") != (problem == "") || !strings.Contains(problem, c.want) {
			t.Errorf("%s: %q, want %q", c.name, problem, c.want)
		}
		if problem != "" && covers != 90 {
			t.Errorf("%s: a bad checkpoint moved the covered sequence to %d", c.name, covers)
		}
	}
	// Hashes are kept for the last 4,096 messages only.
	for seq := uint64(100); seq < 5000; seq++ {
		r.add(seq, nil)
		hashes.put(seq, r)
	}
	if _, problem := checkCheckpoint(5000, 90, sign(key, 95, strings.Repeat("00", 32)), hashes, nil); !strings.Contains(problem, "too far behind") {
		t.Errorf("a checkpoint 4,905 messages behind: %q", problem)
	}
}

// TestSnapshotsAreVerified: the memory views saved with the stream's
// position come back equal, caught up with what the stream got since; a
// snapshot that was altered, one of another stream and one ahead of the
// stream are refused, naming why (the caller folds the stream instead).
func TestSnapshotsAreVerified(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gen := streamgen.Generate(streamgen.Config{Events: 6000, Devices: 200, Customers: 80, Seed: 21})
	half := len(gen.Commits) / 2
	e := newEnv(t)
	if err := streamgen.Publish(ctx, e.j, gen.Commits[:half]); err != nil {
		t.Fatal(err)
	}
	m, err := Fold(ctx, e.j, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := SaveSnapshot(ctx, e.j, m, dir); err != nil {
		t.Fatal(err)
	}
	if err := streamgen.Publish(ctx, e.j, gen.Commits[half:]); err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadSnapshot(ctx, e.j, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	folded, err := Fold(ctx, e.j, nil)
	if err != nil {
		t.Fatal(err)
	}
	for serial := range gen.Devices {
		a, _ := loaded.DeviceHistory(ctx, "OTP", serial, projections.Page{Limit: projections.MaxLimit})
		b, _ := folded.DeviceHistory(ctx, "OTP", serial, projections.Page{Limit: projections.MaxLimit})
		ea, _, _, _ := loaded.DeviceErrors(ctx, "OTP", serial)
		eb, _, _, _ := folded.DeviceErrors(ctx, "OTP", serial)
		ia, _ := loaded.DeviceInstitutions(ctx, "OTP", serial)
		ib, _ := folded.DeviceInstitutions(ctx, "OTP", serial)
		ja, _ := json.Marshal([]any{a, ea, ia})
		jb, _ := json.Marshal([]any{b, eb, ib})
		if string(ja) != string(jb) {
			t.Fatalf("device %s: the snapshot caught up differs from a fold:\n%s\n%s", serial, ja, jb)
		}
	}

	at := time.Now()
	for no := range gen.Customers {
		answer := func(m *projections.Memory) string {
			d, _ := m.CustomerDevices(ctx, no, at)
			md, _ := m.CustomerMedia(ctx, no, "", projections.Page{Limit: projections.MaxLimit})
			mob, _, _, _ := m.MobileOTP(ctx, no, at)
			j, _ := json.Marshal([]any{d, md, mob})
			return string(j)
		}
		if a, b := answer(loaded), answer(folded); a != b {
			t.Fatalf("customer %s: the snapshot caught up differs from a fold:\n%s\n%s", no, a, b)
		}
	}
	for _, inst := range []string{"IBKS", "KB001", "SH002", "WR003", "HN004"} {
		da, _ := loaded.InstitutionDevices(ctx, inst, "", projections.Page{Limit: projections.MaxLimit})
		db, _ := folded.InstitutionDevices(ctx, inst, "", projections.Page{Limit: projections.MaxLimit})
		if ja, jb := fmt.Sprint(da), fmt.Sprint(db); ja != jb || len(db.Items) == 0 && inst != "IBKS" {
			t.Fatalf("devices of %s differ (or none):\n%s\n%s", inst, ja, jb)
		}
	}
	pa, _ := loaded.PendingApprovals(ctx, projections.Page{Limit: projections.MaxLimit})
	pb, _ := folded.PendingApprovals(ctx, projections.Page{Limit: projections.MaxLimit})
	if ja, jb := fmt.Sprint(pa), fmt.Sprint(pb); ja != jb {
		t.Fatalf("pending approvals differ:\n%s\n%s", ja, jb)
	}

	// Altered: one byte of the snapshot file.
	altered := t.TempDir()
	copyDir(t, dir, altered)
	path := filepath.Join(altered, SnapshotFile)
	data, _ := os.ReadFile(path)
	data[len(data)/2] ^= 0xff
	_ = os.WriteFile(path, data, 0o600)
	if _, err := LoadSnapshot(ctx, e.j, altered, nil); !errors.Is(err, projections.ErrSnapshot) {
		t.Errorf("an altered snapshot: %v", err)
	}
	// Another stream: the same generator, another seed.
	other := newEnv(t)
	if err := streamgen.Publish(ctx, other.j, streamgen.Generate(streamgen.Config{Events: 6000, Devices: 200, Customers: 80, Seed: 22}).Commits); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSnapshot(ctx, other.j, dir, nil); err == nil || !strings.Contains(err.Error(), "another stream") {
		t.Errorf("a snapshot of another stream: %v", err)
	}
	// Ahead: a snapshot of the whole stream, loaded beside its first half.
	ahead := t.TempDir()
	if err := SaveSnapshot(ctx, e.j, folded, ahead); err != nil {
		t.Fatal(err)
	}
	prefix := newEnv(t)
	if err := streamgen.Publish(ctx, prefix.j, gen.Commits[:half]); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSnapshot(ctx, prefix.j, ahead, nil); err == nil || !strings.Contains(err.Error(), "ahead") {
		t.Errorf("a snapshot ahead of the stream: %v", err)
	}
	if _, err := LoadSnapshot(ctx, e.j, t.TempDir(), nil); !errors.Is(err, ErrNoSnapshot) {
		t.Errorf("no snapshot: %v", err)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.CopyFS(to, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
}
