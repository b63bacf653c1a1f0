// GET /api/stats: how many items are open and done, across all users (a script sees every row).
exports.get = function (request, response) {
    request.service.tables.getTable('TodoItem').read({
        success: function (items) {
            var done = items.filter(function (i) { return i.complete; }).length;
            response.send(200, { open: items.length - done, done: done });
        },
        error: function (err) {
            response.send(500, { error: String(err) });
        }
    });
};
