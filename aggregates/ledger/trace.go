package ledger

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/otpledger/otpledger/aggregates"
	"github.com/otpledger/otpledger/events"
)

// A command is an OpenTelemetry span (a no-op unless the process installed a
// tracer provider), the parent of its appends' spans. A refusal names its
// rule and is not an error of the span: the ledger did its work.
var tracer = otel.Tracer("github.com/otpledger/otpledger/aggregates/ledger")

func startCommand(ctx context.Context, name string, ref events.AggregateRef, cmd any) (context.Context, trace.Span) {
	ctx, span := tracer.Start(ctx, name)
	if span.IsRecording() { // off: no attribute strings on the command path
		span.SetAttributes(attribute.String("otpledger.aggregate", ref.String()), attribute.String("otpledger.command", fmt.Sprintf("%T", cmd)))
	}
	return ctx, span
}

func endCommand(span trace.Span, err error) {
	var re *aggregates.RuleError
	switch {
	case errors.As(err, &re):
		span.SetAttributes(attribute.String("otpledger.refused_by", string(re.Rule)))
	case err != nil:
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
