// Runs once before the server accepts requests.
exports.startup = function (context, done) {
    console.log('todo app starting');
    done();
};
