package journal

import (
	"context"
	"net/http"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Tracing is OpenTelemetry's, off unless the process installs a tracer
// provider (serve does when OTEL_EXPORTER_OTLP_ENDPOINT is set). An append
// is a span, and each message it writes carries the span's W3C traceparent
// header, so that the projector's span applying it links back to the
// command.
var tracer = otel.Tracer("github.com/otpledger/otpledger/events/journal")

func startAppend(ctx context.Context, recs []Record) (context.Context, trace.Span) {
	ctx, span := tracer.Start(ctx, "journal.Append", trace.WithSpanKind(trace.SpanKindProducer))
	if span.IsRecording() { // off: no attribute strings on the append path
		span.SetAttributes(attribute.String("otpledger.aggregate", recs[0].Commit.Aggregate().String()),
			attribute.Int("otpledger.messages", len(recs)), attribute.Bool("otpledger.atomic_batch", len(recs) > 1))
	}
	return ctx, span
}

func endAppend(span trace.Span, seqs []uint64, err error) {
	if len(seqs) > 0 && span.IsRecording() {
		span.SetAttributes(attribute.Int64("otpledger.sequence", int64(seqs[0])))
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// traceParent sets m's traceparent header from ctx's span, when traced.
func traceParent(ctx context.Context, m *nats.Msg) {
	if !trace.SpanContextFromContext(ctx).IsSampled() {
		return
	}
	h := http.Header{}
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(h))
	if tp := h.Get("Traceparent"); tp != "" {
		if m.Header == nil {
			m.Header = nats.Header{}
		}
		m.Header.Set("Traceparent", tp)
	}
}
