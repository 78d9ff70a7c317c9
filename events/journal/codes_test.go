package journal

import (
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

func TestVersionCheck(t *testing.T) {
	t.Parallel()
	for have, ok := range map[string]bool{"2.9.25": false, "2.11.9": false, "2.12.0": true, "2.15.2": true, "3.0.0-beta": true} {
		if versionAtLeast(have, MinServerVersion) != ok {
			t.Errorf("versionAtLeast(%s) != %v", have, ok)
		}
	}
}

// TestServerErrorCodes: the codes the journal names itself are the
// server's, and an unavailable server's error reads on one line.
func TestServerErrorCodes(t *testing.T) {
	for code, id := range map[jetstream.ErrorCode]server.ErrorIdentifier{
		codeBatchDuplicate:     server.JSAtomicPublishContainsDuplicateMessageErr,
		codeDuplicateInProcess: server.JSStreamDuplicateMessageConflict,
	} {
		if want := jetstream.ErrorCode(server.ApiErrors[id].ErrCode); code != want {
			t.Errorf("code %d, the server's is %d", code, want)
		}
	}
	err := classify(errors.New("connection closed"))
	if !errors.Is(err, ErrUnavailable) || strings.Contains(err.Error(), "\n") {
		t.Errorf("classify: %q", err)
	}
}
