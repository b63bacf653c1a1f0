package table

import (
	"strings"
)

// System property bits (v1 opts into them with __systemProperties).
const (
	sysCreatedAt uint8 = 1 << iota
	sysUpdatedAt
	sysVersion
	sysDeleted
	sysAll = sysCreatedAt | sysUpdatedAt | sysVersion | sysDeleted
)

// ParseSystemProperties reads v1's __systemProperties as the original runtime did
// (core.validateAndNormalizeSystemProperties): a comma list of names, case-insensitive, with or
// without the __ prefix; or * standing alone ("*,__updatedAt" names '*' as unsupported).
func ParseSystemProperties(v string) (uint8, error) {
	parts := strings.Split(v, ",")
	if len(parts) == 1 && strings.TrimSpace(parts[0]) == "*" {
		return sysAll, nil
	}
	var out uint8
	for _, original := range parts {
		p := strings.ToLower(strings.TrimSpace(original))
		switch strings.TrimPrefix(p, "__") {
		case "":
			if p != "" { // "__" alone is no property
				return 0, inputf("The value '%s' is not a supported system property.", original)
			}
		case "createdat":
			out |= sysCreatedAt
		case "updatedat":
			out |= sysUpdatedAt
		case "version":
			out |= sysVersion
		case "deleted":
			out |= sysDeleted
		default:
			return 0, inputf("The value '%s' is not a supported system property.", original)
		}
	}
	return out, nil
}

// view says how to render rows.
type view struct {
	v2  bool
	sys uint8 // v1: system properties to include
	// cols, when not nil, limits user columns to these lower-cased names ($select, or the fields a
	// v1 insert/update submitted). includeID says whether id is written in that case.
	cols      map[string]bool
	includeID bool
}

func (v view) names() [4]string {
	if v.v2 {
		return sysV2
	}
	return sysV1
}

// system is the system properties an item of s shows.
func (v view) system(s *Schema) uint8 {
	if v.v2 {
		if v.cols == nil {
			return sysAll
		}
		var sys uint8
		for i, n := range sysV2Lower {
			if v.cols[n] {
				sys |= 1 << i
			}
		}
		return sys
	}
	if s.IDType == IntegerID {
		return 0 // integer-id tables never exposed system properties in v1
	}
	return v.sys
}

// appendRow writes one item as a JSON object.
func appendRow(b []byte, s *Schema, r *Row, v view) []byte {
	b = append(b, '{')
	first := true
	field := func(name string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, name)
		b = append(b, ':')
	}
	if v.cols == nil || v.includeID {
		field("id")
		b = appendValue(b, r.ID)
	}
	sys := v.system(s)
	names := v.names()
	if sys&sysCreatedAt != 0 {
		field(names[0])
		b = appendValue(b, r.CreatedAt)
	}
	if sys&sysUpdatedAt != 0 {
		field(names[1])
		b = appendValue(b, r.UpdatedAt)
	}
	if sys&sysVersion != 0 {
		field(names[2])
		b = appendValue(b, r.Version)
	}
	if sys&sysDeleted != 0 {
		field(names[3])
		b = appendValue(b, r.Deleted)
	}
	for _, k := range s.order {
		if v.cols != nil && !v.cols[k] {
			continue
		}
		field(s.columns[k].Name)
		b = appendValue(b, r.Values[k])
	}
	return append(b, '}')
}
