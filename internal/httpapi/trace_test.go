package httpapi

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// spans records every span of this package's tests (the in-memory exporter
// of OpenTelemetry's SDK): tracing on, as serve turns it on with
// OTEL_EXPORTER_OTLP_ENDPOINT.
var spans = tracetest.NewInMemoryExporter()

func TestMain(m *testing.M) {
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans)))
	os.Exit(m.Run())
}

// TestTracesFollowACommand: a command sent with a W3C traceparent is one
// trace — the HTTP span (named by its route) continuing the caller's, the
// ledger's span under it, the journal's append under that — and the
// projector's span applying the message links to it.
func TestTracesFollowACommand(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	status, body := a.do(t, "POST", "/v1/devices/OTP/000111222999/registrations", "application/json",
		`{"channel":"CENTER","institution":"KB001","actor":{"role":"SYSTEM"}}`, "Traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	if status != 201 {
		t.Fatalf("command: %d %s", status, body)
	}
	a.settle(t)
	var ours []tracetest.SpanStub
	var linked *tracetest.SpanStub
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		ours, linked = nil, nil
		for _, s := range spans.GetSpans() {
			if s.SpanContext.TraceID().String() == traceID {
				ours = append(ours, s)
			}
			if s.Name == "projector.apply" && slices.ContainsFunc(s.Links, func(l sdktrace.Link) bool { return l.SpanContext.TraceID().String() == traceID }) {
				linked = &s
			}
		}
		if len(ours) >= 3 && linked != nil {
			break
		}
	}
	byName := map[string]tracetest.SpanStub{}
	for _, s := range ours {
		byName[s.Name] = s
	}
	httpSpan, ok1 := byName["POST /v1/devices/{vendor}/{serial}/registrations"]
	ledgerSpan, ok2 := byName["ledger.Device"]
	appendSpan, ok3 := byName["journal.Append"]
	if !ok1 || !ok2 || !ok3 {
		t.Fatalf("the command's trace holds %v", names(ours))
	}
	if httpSpan.Parent.SpanID().String() != "00f067aa0ba902b7" || ledgerSpan.Parent.SpanID() != httpSpan.SpanContext.SpanID() ||
		appendSpan.Parent.SpanID() != ledgerSpan.SpanContext.SpanID() {
		t.Errorf("the spans do not nest caller → HTTP → ledger → journal")
	}
	if linked == nil {
		t.Fatal("no projector span links to the command's trace")
	}
	if l := linked.Links[slices.IndexFunc(linked.Links, func(l sdktrace.Link) bool { return l.SpanContext.TraceID().String() == traceID })]; l.SpanContext.SpanID() != appendSpan.SpanContext.SpanID() {
		t.Errorf("the projector's span links to %v, want the append %v", l.SpanContext.SpanID(), appendSpan.SpanContext.SpanID())
	}
}

func names(ss []tracetest.SpanStub) string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Name)
	}
	return strings.Join(out, ", ")
}
