// Package apitest holds what the API's tests and the end-to-end tests share
// about principals: one key per role (producers by the channels they serve)
// and which of them a request is sent as.
package apitest

import (
	"net/http"
	"regexp"
	"strings"

	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/internal/access"
)

// Keys are the test principals. Their ids are the staff, approver and
// SYSTEM actor ids the tests' requests name.
var Keys = []access.NewKey{
	{ID: "S100", Role: events.RoleTeller},
	{ID: "M200", Role: events.RoleManager},
	{ID: "M300", Role: events.RoleManager},
	{ID: "AUTH", Role: events.RoleProducer, Channels: []events.Channel{events.ChannelAuth}},
	{ID: "CENTER", Role: events.RoleProducer, Channels: []events.Channel{events.ChannelCenter}},
	{ID: "CORE", Role: events.RoleProducer, Channels: []events.Channel{events.ChannelCore}},
	{ID: "FRONT", Role: events.RoleProducer, Channels: []events.Channel{events.ChannelMTS, events.ChannelMobileWeb, events.ChannelHTS,
		events.ChannelWTS, events.ChannelHomepage, events.ChannelPhone, events.ChannelODS}},
	{ID: "AUD1", Role: events.RoleAuditor},
	{ID: "OPS1", Role: events.RoleOperator},
	{ID: "ADM1", Role: events.RoleAdmin},
}

var channelRE = regexp.MustCompile(`"channel":"([A-Z_]+)"`)

// PrincipalFor picks the key a request is sent as, the way a deployment
// routes it: keys by the admin, approvals by a manager, metrics by an
// operator, queries by a teller, commands by whoever serves their channel.
func PrincipalFor(method, path, body string) string {
	switch {
	case strings.HasPrefix(path, "/v1/keys"):
		return "ADM1"
	case strings.HasSuffix(path, "/approval"):
		return "M200"
	case path == "/metrics":
		return "OPS1"
	case method == http.MethodGet:
		return "S100"
	}
	ch := ""
	if m := channelRE.FindStringSubmatch(body); m != nil {
		ch = m[1]
	}
	switch ch {
	case "BRANCH", "":
		return "S100"
	case "AUTH", "CENTER", "CORE":
		return ch
	}
	return "FRONT"
}
