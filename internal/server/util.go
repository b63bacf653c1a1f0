package server

import (
	"encoding/json"
	"fmt"
	"sort"
)

func sortStrings(s []string) { sort.Strings(s) }

// claimString renders a claim value as App Service does: strings as they are, anything else as JSON.
func claimString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case nil:
		return ""
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return fmt.Sprint(x)
		}
		return string(b)
	}
}
