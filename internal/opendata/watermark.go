package opendata

import (
	"encoding/json"
	"time"
)

// CheckWatermark checks obj's "watermark": {"appid", "timestamp"}, with
// keys matched exactly. appid must equal appID: open data of another app,
// sealed under a session key the attacker holds there, would otherwise be
// accepted here. With maxAge > 0, timestamp (Unix seconds, an integer)
// must be within maxAge of now, in either direction. Anything else, a
// malformed watermark included, is ErrWatermark.
func CheckWatermark(obj json.RawMessage, appID string, maxAge time.Duration, now time.Time) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(obj, &top); err != nil {
		return fail(ErrWatermark, "watermark is malformed")
	}
	raw, ok := top["watermark"]
	if !ok || string(raw) == "null" {
		return fail(ErrWatermark, "no watermark")
	}
	var wm map[string]json.RawMessage
	if err := json.Unmarshal(raw, &wm); err != nil || wm == nil {
		return fail(ErrWatermark, "watermark is malformed")
	}
	var id string
	if err := json.Unmarshal(wm["appid"], &id); err != nil || id != appID {
		return fail(ErrWatermark, "watermark is for another app")
	}
	var ts int64
	if t, ok := wm["timestamp"]; ok {
		if err := json.Unmarshal(t, &ts); err != nil {
			return fail(ErrWatermark, "watermark is malformed")
		}
	}
	if maxAge > 0 {
		age := now.Sub(time.Unix(ts, 0))
		if ts <= 0 || age > maxAge || age < -maxAge {
			return fail(ErrWatermark, "watermark timestamp out of range")
		}
	}
	return nil
}
