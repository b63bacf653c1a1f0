// Command seed fills a Gatehouse table with generated movie rows through the table store (the same
// code path and physical layout the server uses), in large transactions, for benchmarks. It can also
// create a declared index (table.SQL.CreateIndex), as the table options' indexes do.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/appdir"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/table"
)

func main() {
	data := flag.String("data", "./gatehouse-data", "data directory (SQLite)")
	dsn := flag.String("database", "", "database URL (default: SQLite in --data)")
	name := flag.String("table", "movies", "table name")
	rows := flag.Int("rows", 248, "rows to insert")
	index := flag.String("index", "", "index to create: a column, or columns joined by + (e.g. year+title)")
	flag.Parse()
	ctx := context.Background()
	db, err := store.Open(ctx, *dsn, *data)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	svc, err := table.NewService(ctx, table.NewSQL(db), appdir.Empty(), table.Defaults{DynamicSchema: true, Permission: auth.User}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		log.Fatal(err)
	}
	s, err := svc.Lookup(ctx, *name)
	if err != nil {
		s, err = svc.Create(ctx, table.Spec{Name: *name, Columns: map[string]table.ColumnType{
			"title": table.String, "year": table.Number, "duration": table.Number, "rating": table.String, "bestPictureWinner": table.Boolean,
		}, Permissions: map[appdir.Operation]auth.Permission{appdir.Read: auth.User}})
		if err != nil {
			log.Fatal(err)
		}
	}
	st := table.NewSQL(db)
	ratings := []string{"G", "PG", "PG-13", "R", "NC-17"}
	words := strings.Fields("the a of and love night day war last first city man woman dark light king queen story return house blue red gold star road river")
	r := rand.New(rand.NewPCG(1, 2))
	start := time.Now()
	const batch = 5000
	for done := 0; done < *rows; {
		n := min(batch, *rows-done)
		items := make([]*table.Row, n)
		for i := range items {
			title := words[r.IntN(len(words))] + " " + words[r.IntN(len(words))] + " " + words[r.IntN(len(words))]
			items[i] = &table.Row{ID: fmt.Sprintf("m%07d", done+i), Values: map[string]any{
				"title": strings.ToUpper(title[:1]) + title[1:], "year": float64(1920 + r.IntN(105)), "duration": float64(70 + r.IntN(120)),
				"rating": ratings[r.IntN(len(ratings))], "bestpicturewinner": r.IntN(50) == 0,
			}}
		}
		if err := st.InsertBatch(ctx, s, items); err != nil {
			log.Fatal(err)
		}
		done += n
	}
	log.Printf("inserted %d rows into %s in %s", *rows, *name, time.Since(start).Round(time.Millisecond))
	if *index != "" {
		start = time.Now()
		if err := st.CreateIndex(ctx, s, *index); err != nil {
			log.Fatal(err)
		}
		log.Printf("indexed %s (%s) in %s", *name, *index, time.Since(start).Round(time.Millisecond))
	}
}
