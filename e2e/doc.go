// Package e2e holds Gatehouse's end-to-end tests: a real gatehouse binary driven by the official
// Azure Mobile Apps JavaScript client (npm azure-mobile-apps-client) in headless Chromium, through
// playwright-core and the system's Chromium. The tests and their harness are in the _test.go files;
// the Node side is in js/. See README.md for what they need and how to run them.
package e2e
