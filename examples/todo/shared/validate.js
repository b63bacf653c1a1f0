// A shared module: scripts load it with require('../shared/validate').
exports.todo = function (item) {
    if (typeof item.text !== 'string' || item.text.trim() === '') {
        return 'text is required';
    }
    if (item.text.length > 200) {
        return 'text is longer than 200 characters';
    }
    return null;
};
