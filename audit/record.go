package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Events: what a record is about.
const (
	EventAccess     = "access"     // a request to a route
	EventAuthn      = "authn"      // a login, step-up, enrollment, logout
	EventAdmin      = "admin"      // a change by IT staff (revoke, users, policy)
	EventSystem     = "system"     // the trail itself or the gateway (open, torn tail sealed, write failure)
	EventAlert      = "alert"      // monitoring: something a person should look at
	EventCheckpoint = "checkpoint" // a signed checkpoint; written by the trail only
)

// Decisions.
const (
	DecisionAllow  = "allow"
	DecisionDeny   = "deny"
	DecisionStepUp = "stepup"
	DecisionError  = "error"
)

// System record actions written by the trail itself.
const (
	ActionOpen        = "open"              // the trail was opened; detail says how the previous run ended
	ActionTornSealed  = "torn_tail_sealed"  // unreadable bytes after a crash were sealed; detail locates them
	ActionWriteFailed = "write_failed"      // writing failed and later recovered; detail says when and what
	ActionRetention   = "retention_removed" // old files were removed; detail names them and the chain head
)

// Record is one audit record. Field names and their order on disk are the
// outside contract (DESIGN §4); the encoding is in canonical.go.
//
// Callers fill what they know; the [Trail] assigns Seq, Prev and Hash, and
// Time when it is zero.
type Record struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Event     string    `json:"event"`
	RequestID string    `json:"request_id"`
	User      string    `json:"user"`
	Roles     []string  `json:"roles"`
	Device    string    `json:"device"`
	// CertFP is the hex SHA-256 of the device certificate's DER.
	CertFP string   `json:"cert_fp"`
	AMR    []string `json:"amr"`
	// AuthTime is when the session's user last authenticated; zero: unknown.
	AuthTime time.Time `json:"auth_time"`
	IP       string    `json:"ip"`
	Zone     string    `json:"zone"`
	Route    string    `json:"route"`
	Class    string    `json:"class"`
	Segment  string    `json:"segment"`
	Method   string    `json:"method"`
	Host     string    `json:"host"`
	// Path with its query; values of configured parameters are redacted.
	Path     string `json:"path"`
	Decision string `json:"decision"`
	// Enforced is false for a decision made in shadow mode.
	Enforced   bool     `json:"enforced"`
	Rule       string   `json:"rule"`
	Reasons    []string `json:"reasons"`
	Status     int      `json:"status"`
	Bytes      int64    `json:"bytes"`
	DurationMS float64  `json:"duration_ms"`

	// Optional fields, omitted from the encoding when empty.

	// Action is what an authn, admin, system or alert record is about
	// ("login", "revoke_device", "open", "torn_tail_sealed"…).
	Action string `json:"action,omitempty"`
	// Target is what the action was applied to (a user or device id…).
	Target string `json:"target,omitempty"`
	// Detail is free text or a small JSON document for the action.
	Detail string `json:"detail,omitempty"`
	// Checkpoint is the compact JWS of a checkpoint record.
	Checkpoint string `json:"checkpoint,omitempty"`

	Prev string `json:"prev"`
	Hash string `json:"hash"`
}

// MarshalJSON returns the canonical line as stored (with the stored hash).
func (r Record) MarshalJSON() ([]byte, error) {
	body := appendBody(nil, &r, r.Time.UTC())
	b := appendUnhashed(nil, r.Seq, body, r.Prev)
	b = b[:len(b)-1]
	b = append(b, `,"hash":`...)
	b = appendString(b, r.Hash)
	return append(b, '}'), nil
}

// UnmarshalJSON reads a stored line, or any JSON object with the record's
// field names (times in RFC 3339; auth_time may be "").
func (r *Record) UnmarshalJSON(b []byte) error {
	var strict Record
	if _, err := decode(bytes.TrimSpace(b), &strict); err == nil {
		*r = strict
		return nil
	}
	type plain Record // without methods
	aux := struct {
		*plain
		Time     string `json:"time"`
		AuthTime string `json:"auth_time"`
	}{plain: (*plain)(r)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	var err error
	if r.Time, err = parseOptTime(aux.Time); err != nil {
		return fmt.Errorf("audit record time: %w", err)
	}
	if r.AuthTime, err = parseOptTime(aux.AuthTime); err != nil {
		return fmt.Errorf("audit record auth_time: %w", err)
	}
	return nil
}

func parseOptTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

// ParseRecord decodes one stored line (with or without its newline) and
// checks that it is canonical and its hash matches its content. It does not
// check the chain; see [Verify].
func ParseRecord(line []byte) (*Record, error) {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	r := new(Record)
	if _, err := parseLine(line, r, nil); err != nil {
		return nil, fmt.Errorf("parsing audit record: %w", err)
	}
	return r, nil
}

// checkpointPayload is what a checkpoint's JWS signs: the chain head it
// seals. Seq is the sequence number of the last record it covers (the
// checkpoint record's own seq minus one) and Head that record's hash (the
// checkpoint record's prev).
type checkpointPayload struct {
	Seq  uint64 `json:"seq"`
	Head string `json:"head"`
	Time string `json:"time"`
	// Final is set on the checkpoint written by a clean Close.
	Final bool `json:"final,omitempty"`
}

func (p *checkpointPayload) marshal() []byte {
	b, _ := json.Marshal(p)
	return b
}
