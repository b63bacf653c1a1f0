// The job "cleanup": POST /jobs/cleanup (master key) runs it; scripts.jobs = "cleanup=1h" schedules it.
function cleanup() {
    var todo = tables.getTable('TodoItem');
    todo.where({ complete: true }).read({
        success: function (items) {
            items.forEach(function (item) { todo.del(item.id); });
            console.log('cleanup: deleted ' + items.length + ' completed items');
        }
    });
}
