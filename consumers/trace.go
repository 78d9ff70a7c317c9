package consumers

import (
	"context"
	"net/http"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/otpledger/otpledger/projections"
)

// traceParentsKey is the Watermill metadata carrying the W3C traceparent of
// each journal message of a group that has one (the command that wrote it
// was traced), comma-separated.
const traceParentsKey = "otpledger-traceparents"

var tracer = otel.Tracer("github.com/otpledger/otpledger/consumers")

// traceParents returns the traceparent headers of the group's messages.
func traceParents(group []jetstream.Msg) string {
	var out []string
	for _, m := range group {
		if h := m.Headers(); h != nil {
			if tp := h.Get("Traceparent"); tp != "" {
				out = append(out, tp)
			}
		}
	}
	return strings.Join(out, ",")
}

// startApplySpan starts the span of one group's application, linked to the
// spans of the commands that wrote its messages: a trace shows a command
// from the HTTP request to the moment its rows are in the views.
func startApplySpan(ctx context.Context, parents string, items []projections.Item) (context.Context, trace.Span) {
	var links []trace.Link
	for tp := range strings.SplitSeq(parents, ",") {
		if tp == "" {
			continue
		}
		sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(),
			propagation.HeaderCarrier(http.Header{"Traceparent": {tp}})))
		if sc.IsValid() {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	return tracer.Start(ctx, "projector.apply", trace.WithLinks(links...), trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.Int("otpledger.messages", len(items)),
			attribute.Int64("otpledger.first_sequence", int64(items[0].Seq)), attribute.Int64("otpledger.last_sequence", int64(items[len(items)-1].Seq))))
}

func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
