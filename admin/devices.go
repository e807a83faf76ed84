package admin

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/sekisho/sekisho/store"
)

type deviceRow struct {
	Device      *store.Device
	OwnerURL    string
	TimelineURL string
	RevokeURL   string
}

type devicesData struct {
	Rows                     []deviceRow
	Active, Revoked, Pending int
	Query                    string
	Pager                    pager
}

// devices lists the device registry: owner, first and last sight, status.
// Isolating a device goes through the kill switch (confirmation, reason).
func (c *Console) devices(w http.ResponseWriter, r *http.Request) {
	p := c.newPage(r, "devices", "nav.devices")
	devs, err := c.d.Store.ListDevices(r.Context())
	if err != nil {
		c.internal(w, r, err)
		return
	}
	d := &devicesData{Query: strings.TrimSpace(r.URL.Query().Get("q"))}
	if len(d.Query) > maxFieldLen {
		d.Query = ""
	}
	var match []*store.Device
	for _, dv := range devs {
		switch dv.Status {
		case store.DeviceRevoked:
			d.Revoked++
		case store.DevicePending:
			d.Pending++
		default:
			d.Active++
		}
		if matchesQuery(d.Query, dv.ID, dv.Owner, dv.Department, dv.Status) {
			match = append(match, dv)
		}
	}
	lo, hi, pg := paginate(r, "/devices", d.Query, len(match))
	d.Pager = pg
	for _, dv := range match[lo:hi] {
		row := deviceRow{Device: dv,
			TimelineURL: Prefix + "/timeline?" + url.Values{"device": {dv.ID}}.Encode(),
			RevokeURL:   Prefix + "/revoke?" + url.Values{"kind": {"device"}, "subject": {dv.ID}}.Encode()}
		if dv.Owner != "" {
			row.OwnerURL = Prefix + "/users/view?" + url.Values{"id": {dv.Owner}}.Encode()
		}
		d.Rows = append(d.Rows, row)
	}
	p.Data = d
	c.render(w, r, "devices", p)
}

// enableDevice returns an isolated device to service. Sessions ended by
// its revocation stay ended. A reason is required.
func (c *Console) enableDevice(w http.ResponseWriter, r *http.Request) {
	id := r.PostForm.Get("id")
	dv, err := c.d.Store.GetDevice(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		c.fail(w, r, http.StatusNotFound, "err.nodevice", nil)
		return
	}
	if err != nil {
		c.internal(w, r, err)
		return
	}
	reason, ok := cleanText(r.PostForm.Get("reason"), 500)
	if !ok || reason == "" {
		c.fail(w, r, http.StatusBadRequest, "err.reason", nil)
		return
	}
	// A pending device (devices.registration: manual) is registered; an
	// isolated one returns to service.
	action := "device_enable"
	if dv.Status == store.DevicePending {
		action = "device_register"
	}
	dv.Status, dv.Reason = store.DeviceActive, ""
	err = c.d.Store.UpsertDevice(r.Context(), dv)
	if rerr := c.record(r, action, dv.ID, reason, err); err != nil || rerr != nil {
		c.internal(w, r, errors.Join(err, rerr))
		return
	}
	redirect(w, r, "/devices", nil, "device_enabled")
}
