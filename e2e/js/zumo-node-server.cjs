// The reference Mobile Apps (v2) server: Microsoft's Node server SDK `azure-mobile-apps` (pinned in
// package.json) with its SQLite data provider on an in-memory database, serving the client test
// suites' `movies` table (soft delete on) on 127.0.0.1:PORT (0 = any). Prints
// "listening on http://127.0.0.1:PORT" once the tables are initialized. Used by import_test.go.
'use strict';
const express = require('express');
const azureMobileApps = require('azure-mobile-apps');

const app = express();
const mobile = azureMobileApps({
    homePage: false,
    swagger: false,
    logging: { level: 'warn' },
    data: { provider: 'sqlite', filename: ':memory:', dynamicSchema: true },
});
// The columns of the client suites' movies table (azure-mobile-apps-js-client's E2E tests).
mobile.tables.add('movies', {
    softDelete: true,
    columns: { title: 'string', duration: 'number', mpaaRating: 'string', releaseDate: 'date', bestPictureWinner: 'boolean', year: 'number' },
});
mobile.tables.add('notes', { softDelete: false });
mobile.tables.initialize().then(() => {
    app.use(mobile);
    const srv = app.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
        console.log('listening on http://127.0.0.1:' + srv.address().port);
    });
    const stop = () => srv.close(() => process.exit(0));
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
}).catch((err) => {
    console.error('initialize failed:', err && err.stack || err);
    process.exit(1);
});
