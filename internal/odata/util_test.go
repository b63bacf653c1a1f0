package odata

import (
	"errors"
	"math"
)

func errorsIsBadQuery(err error) bool { return errors.Is(err, ErrBadQuery) }

func nan() float64 { return math.NaN() }

func (l *Literal) withNaN() *Literal {
	c := *l
	c.Num = nan()
	return &c
}
