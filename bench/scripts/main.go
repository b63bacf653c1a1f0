// Command scripts serves the custom-API benchmark of bench/scripts.sh: the same endpoint written as a
// Mobile Services custom API (api/hello.js, run by package script) and in Go, both behind Gatehouse's
// full middleware chain (request id, CORS headers, dialect, body limit, timeout, authentication).
package main

import (
	"context"
	"flag"
	"log"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/script"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/table"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:18310", "address")
	dir := flag.String("dir", "", "scratch directory (app and database)")
	flag.Parse()
	if *dir == "" {
		log.Fatal("--dir is required")
	}
	files := map[string]string{
		"api/hello.json": `{"routes":{"*":{"get":{"permission":"application"}}}}`,
		"api/hello.js":   `exports.get = function (request, response) { response.send(200, { message: 'hello', user: request.user.level, n: 1 }); };`,
	}
	for name, body := range files {
		p := filepath.Join(*dir, "app", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg, err := config.Load(nil, func(k string) string {
		return map[string]string{"GATEHOUSE_APPLICATION_KEY": "bench-application-key-0123", "GATEHOUSE_MASTER_KEY": "bench-master-key-0123456789", "GATEHOUSE_SYSTEM_KEY": "bench-system-key-0123456789", "GATEHOUSE_LOG_LEVEL": "warn"}[k]
	})
	if err != nil {
		log.Fatal(err)
	}
	a, err := auth.New(auth.Secrets{MasterKey: cfg.MasterKey, ApplicationKey: cfg.ApplicationKey, SystemKey: cfg.SystemKey}, auth.Options{MaxTTL: time.Hour})
	if err != nil {
		log.Fatal(err)
	}
	db, err := store.Open(ctx, "sqlite://"+filepath.Join(*dir, "bench.db"), *dir)
	if err != nil {
		log.Fatal(err)
	}
	engine, err := script.New(filepath.Join(*dir, "app"), script.Options{Log: logger, Keys: func() script.Keys { return script.Keys{MasterKey: cfg.MasterKey, ApplicationKey: cfg.ApplicationKey} }})
	if err != nil {
		log.Fatal(err)
	}
	tables, err := table.NewService(ctx, table.NewSQL(db), engine.App(), table.Defaults{DynamicSchema: true, Permission: auth.Application}, logger)
	if err != nil {
		log.Fatal(err)
	}
	engine.SetServices(&table.ScriptAPI{Service: tables}, script.NewSQL(db, tables))
	srv := server.New(server.Deps{Config: cfg, Auth: a, Minter: &auth.Minter{Auth: a, DefaultTTL: time.Hour, MaxTTL: time.Hour}, App: engine.App(), DB: db, Metrics: metrics.New("bench"), Logger: logger, Version: "bench"})
	srv.Mount("api", "/api/{name}", &script.APIHandler{Engine: engine})
	// The Go twin: same permission, same body.
	srv.Mount("/api/hellogo", "/api/hellogo", server.RequirePermission(auth.Application, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.JSON(w, http.StatusOK, map[string]any{"message": "hello", "user": httpx.CallerOf(r).Level.String(), "n": 1})
	})))
	log.Fatal(http.ListenAndServe(*addr, srv.Handler()))
}
