// Runs before every insert into TodoItem, as on Mobile Services.
var validate = require('../shared/validate');

function insert(item, user, request) {
    var problem = validate.todo(item);
    if (problem) {
        request.respond(statusCodes.BAD_REQUEST, { error: problem });
        return;
    }
    item.text = item.text.trim();
    item.complete = item.complete === true;
    request.execute();
}
