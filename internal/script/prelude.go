package script

// preludeJS is the JavaScript half of the Node subset: Buffer (a Uint8Array subclass), util,
// querystring, url.format, events, console, timers, the table object and its query builder, mssql,
// push. It receives the Go half (gh) as an argument, so gh never becomes a global. It returns the
// builtin modules by name.
const preludeJS = `(function (gh, global) {
'use strict';
var slice = Array.prototype.slice;

// ---- Buffer ---------------------------------------------------------------------------------
class Buffer extends Uint8Array {
  constructor(a, b, c) {
    if (typeof a === 'number') { gh.count(a); super(a < 0 ? 0 : Math.floor(a)); return; }
    if (a instanceof ArrayBuffer) {
      var off = b === undefined ? 0 : b;
      super(a, off, c === undefined ? a.byteLength - off : c);
      return;
    }
    if (typeof a === 'string') { super(gh.decode(a, b)); return; }
    if (a instanceof Uint8Array || Array.isArray(a)) { gh.count(a.length); super(a); return; }
    if (a && a.type === 'Buffer' && Array.isArray(a.data)) { gh.count(a.data.length); super(a.data); return; }
    if (a && typeof a === 'object' && typeof a.length === 'number') { gh.count(a.length); super(a); return; }
    throw new TypeError('First argument needs to be a number, array or string.');
  }
  static from(a, b, c) {
    if (typeof a === 'number') throw new TypeError('"value" argument must not be a number');
    return new Buffer(a, b, c);
  }
  static alloc(n, fill, enc) {
    var b = new Buffer(n);
    if (fill !== undefined && fill !== 0) {
      if (typeof fill === 'string') { var f = new Buffer(fill, enc); for (var i = 0; i < b.length && f.length; i++) b[i] = f[i % f.length]; }
      else b.fill(fill);
    }
    return b;
  }
  static allocUnsafe(n) { return new Buffer(n); }
  static isBuffer(x) { return x instanceof Buffer; }
  static isEncoding(e) { return gh.isEncoding(e); }
  static byteLength(s, enc) {
    if (typeof s !== 'string') return s.byteLength !== undefined ? s.byteLength : s.length;
    return gh.byteLength(s, enc);
  }
  static concat(list, total) {
    if (!Array.isArray(list)) throw new TypeError('list argument must be an Array of Buffers.');
    if (total === undefined) { total = 0; for (var i = 0; i < list.length; i++) total += list[i].length; }
    var out = new Buffer(total), pos = 0;
    for (var j = 0; j < list.length && pos < total; j++) {
      var x = list[j];
      var n = Math.min(x.length, total - pos);
      out.set(n === x.length ? x : x.subarray(0, n), pos);
      pos += n;
    }
    return out;
  }
  static compare(a, b) { return a.compare(b); }
  toString(enc, start, end) {
    start = start === undefined ? 0 : Math.max(0, start | 0);
    end = end === undefined ? this.length : Math.min(this.length, end | 0);
    if (end <= start) return '';
    return gh.encode(this, enc === undefined || enc === null ? 'utf8' : String(enc), start, end);
  }
  toJSON() { return { type: 'Buffer', data: Array.prototype.slice.call(this) }; }
  slice(s, e) { return this.subarray(s, e); }
  equals(o) { return this.compare(o) === 0; }
  compare(o) {
    if (!(o instanceof Uint8Array)) throw new TypeError('Argument must be a buffer');
    var n = Math.min(this.length, o.length);
    for (var i = 0; i < n; i++) { if (this[i] !== o[i]) return this[i] < o[i] ? -1 : 1; }
    return this.length === o.length ? 0 : (this.length < o.length ? -1 : 1);
  }
  copy(target, ts, ss, se) {
    ts = ts || 0; ss = ss || 0; se = se === undefined ? this.length : se;
    var n = Math.max(0, Math.min(se - ss, target.length - ts));
    target.set(this.subarray(ss, ss + n), ts);
    return n;
  }
  write(s, offset, length, enc) {
    if (typeof offset === 'string') { enc = offset; offset = 0; length = undefined; }
    else if (typeof length === 'string') { enc = length; length = undefined; }
    offset = offset || 0;
    var b = new Buffer(s, enc);
    var n = Math.min(b.length, this.length - offset, length === undefined ? Infinity : length);
    this.set(b.subarray(0, n), offset);
    return n;
  }
  _dv() { return new DataView(this.buffer, this.byteOffset, this.byteLength); }
  readUInt8(o) { return this._dv().getUint8(o || 0); }
  readInt8(o) { return this._dv().getInt8(o || 0); }
  readUInt16BE(o) { return this._dv().getUint16(o || 0, false); }
  readUInt16LE(o) { return this._dv().getUint16(o || 0, true); }
  readInt16BE(o) { return this._dv().getInt16(o || 0, false); }
  readInt16LE(o) { return this._dv().getInt16(o || 0, true); }
  readUInt32BE(o) { return this._dv().getUint32(o || 0, false); }
  readUInt32LE(o) { return this._dv().getUint32(o || 0, true); }
  readInt32BE(o) { return this._dv().getInt32(o || 0, false); }
  readInt32LE(o) { return this._dv().getInt32(o || 0, true); }
  readDoubleBE(o) { return this._dv().getFloat64(o || 0, false); }
  readDoubleLE(o) { return this._dv().getFloat64(o || 0, true); }
  writeUInt8(v, o) { this._dv().setUint8(o || 0, v); return (o || 0) + 1; }
  writeInt8(v, o) { this._dv().setInt8(o || 0, v); return (o || 0) + 1; }
  writeUInt16BE(v, o) { this._dv().setUint16(o || 0, v, false); return (o || 0) + 2; }
  writeUInt16LE(v, o) { this._dv().setUint16(o || 0, v, true); return (o || 0) + 2; }
  writeUInt32BE(v, o) { this._dv().setUint32(o || 0, v, false); return (o || 0) + 4; }
  writeUInt32LE(v, o) { this._dv().setUint32(o || 0, v, true); return (o || 0) + 4; }
  writeInt32BE(v, o) { this._dv().setInt32(o || 0, v, false); return (o || 0) + 4; }
  writeInt32LE(v, o) { this._dv().setInt32(o || 0, v, true); return (o || 0) + 4; }
  writeDoubleBE(v, o) { this._dv().setFloat64(o || 0, v, false); return (o || 0) + 8; }
  writeDoubleLE(v, o) { this._dv().setFloat64(o || 0, v, true); return (o || 0) + 8; }
  inspect() { return '<Buffer ' + gh.encode(this, 'hex', 0, Math.min(this.length, 50)).replace(/(..)(?!$)/g, '$1 ') + (this.length > 50 ? ' ... ' : '') + '>'; }
}
Buffer.poolSize = 8192;
Object.defineProperty(Buffer.prototype, 'parent', { get: function () { return this.buffer; } });

// ---- util -----------------------------------------------------------------------------------
function inspect(x, depth) {
  if (depth === undefined) depth = 2;
  if (x === undefined) return 'undefined';
  if (x === null) return 'null';
  if (typeof x === 'string') return "'" + x.replace(/'/g, "\\'") + "'";
  if (typeof x === 'function') return '[Function' + (x.name ? ': ' + x.name : '') + ']';
  if (typeof x !== 'object') return String(x);
  if (x instanceof Buffer) return x.inspect();
  if (x instanceof Error) return x.stack || String(x);
  if (x instanceof Date) return x.toISOString();
  if (x instanceof RegExp) return String(x);
  if (depth < 0) return Array.isArray(x) ? '[Array]' : '[Object]';
  if (Array.isArray(x)) return '[ ' + x.map(function (v) { return inspect(v, depth - 1); }).join(', ') + ' ]';
  var keys = Object.keys(x);
  if (keys.length === 0) return '{}';
  return '{ ' + keys.map(function (k) { return k + ': ' + inspect(x[k], depth - 1); }).join(', ') + ' }';
}
function format(f) {
  var args = arguments;
  if (typeof f !== 'string') return slice.call(args).map(function (a) { return typeof a === 'string' ? a : inspect(a); }).join(' ');
  var i = 1;
  var str = String(f).replace(/%[sdjifoO%]/g, function (x) {
    if (x === '%%') return '%';
    if (i >= args.length) return x;
    var a = args[i++];
    switch (x) {
      case '%s': return String(a);
      case '%d': case '%i': return String(Number(a));
      case '%f': return String(parseFloat(a));
      case '%j': try { return JSON.stringify(a); } catch (e) { return '[Circular]'; }
      default: return inspect(a);
    }
  });
  for (; i < args.length; i++) { var a = args[i]; str += ' ' + (a === null || typeof a !== 'object' ? String(a) : inspect(a)); }
  return str;
}
var util = {
  format: format, inspect: inspect,
  inherits: function (ctor, superCtor) {
    ctor.super_ = superCtor;
    ctor.prototype = Object.create(superCtor.prototype, { constructor: { value: ctor, enumerable: false, writable: true, configurable: true } });
  },
  isArray: Array.isArray,
  isBoolean: function (x) { return typeof x === 'boolean'; },
  isNull: function (x) { return x === null; },
  isNullOrUndefined: function (x) { return x === null || x === undefined; },
  isNumber: function (x) { return typeof x === 'number'; },
  isString: function (x) { return typeof x === 'string'; },
  isUndefined: function (x) { return x === undefined; },
  isObject: function (x) { return x !== null && typeof x === 'object'; },
  isFunction: function (x) { return typeof x === 'function'; },
  isRegExp: function (x) { return x instanceof RegExp; },
  isDate: function (x) { return x instanceof Date; },
  isError: function (x) { return x instanceof Error; },
  isPrimitive: function (x) { return x === null || (typeof x !== 'object' && typeof x !== 'function'); },
  isBuffer: function (x) { return x instanceof Buffer; },
  log: function () { console.log(format.apply(null, arguments)); },
  debuglog: function () { return function () {}; },
  deprecate: function (fn) { return fn; },
  _extend: function (o, add) { if (add && typeof add === 'object') Object.keys(add).forEach(function (k) { o[k] = add[k]; }); return o; }
};

// ---- events ---------------------------------------------------------------------------------
function EventEmitter() { this._events = {}; }
EventEmitter.prototype.on = EventEmitter.prototype.addListener = function (n, f) {
  if (!this._events) this._events = {};
  (this._events[n] = this._events[n] || []).push(f); return this;
};
EventEmitter.prototype.once = function (n, f) {
  var self = this;
  function g() { self.removeListener(n, g); f.apply(this, arguments); }
  g.listener = f; return this.on(n, g);
};
EventEmitter.prototype.removeListener = EventEmitter.prototype.off = function (n, f) {
  var l = this._events && this._events[n]; if (!l) return this;
  this._events[n] = l.filter(function (x) { return x !== f && x.listener !== f; }); return this;
};
EventEmitter.prototype.removeAllListeners = function (n) { if (n === undefined) this._events = {}; else if (this._events) delete this._events[n]; return this; };
EventEmitter.prototype.emit = function (n) {
  var l = this._events && this._events[n];
  if (!l || l.length === 0) { if (n === 'error') throw (arguments[1] instanceof Error ? arguments[1] : new Error('Uncaught, unspecified "error" event.')); return false; }
  var args = slice.call(arguments, 1);
  l.slice().forEach(function (f) { f.apply(this, args); }, this); return true;
};
EventEmitter.prototype.listeners = function (n) { return (this._events && this._events[n] || []).slice(); };
EventEmitter.prototype.setMaxListeners = function () { return this; };
EventEmitter.EventEmitter = EventEmitter;

// ---- querystring ----------------------------------------------------------------------------
function qsEscape(s) { return encodeURIComponent(s); }
function qsUnescape(s) { try { return decodeURIComponent(s); } catch (e) { return unescape(s); } }
var querystring = {
  escape: qsEscape, unescape: qsUnescape,
  stringify: function (obj, sep, eq) {
    sep = sep || '&'; eq = eq || '=';
    if (obj === null || typeof obj !== 'object') return '';
    function prim(v) { return typeof v === 'string' ? v : (typeof v === 'boolean' || (typeof v === 'number' && isFinite(v))) ? String(v) : ''; }
    return Object.keys(obj).map(function (k) {
      var ks = qsEscape(prim(k)) + eq, v = obj[k];
      if (Array.isArray(v)) return v.map(function (x) { return ks + qsEscape(prim(x)); }).join(sep);
      return ks + qsEscape(prim(v));
    }).filter(Boolean).join(sep);
  },
  parse: function (qs, sep, eq, opts) {
    sep = sep || '&'; eq = eq || '=';
    var obj = {};
    if (typeof qs !== 'string' || qs.length === 0) return obj;
    var max = (opts && typeof opts.maxKeys === 'number') ? opts.maxKeys : 1000;
    var parts = qs.split(sep);
    if (max > 0 && parts.length > max) parts = parts.slice(0, max);
    parts.forEach(function (p) {
      var x = p.replace(/\+/g, '%20'), i = x.indexOf(eq), k, v;
      if (i >= 0) { k = x.substr(0, i); v = x.substr(i + eq.length); } else { k = x; v = ''; }
      k = qsUnescape(k); v = qsUnescape(v);
      if (!Object.prototype.hasOwnProperty.call(obj, k)) Object.defineProperty(obj, k, { value: v, writable: true, enumerable: true, configurable: true });
      else if (Array.isArray(obj[k])) obj[k].push(v);
      else obj[k] = [obj[k], v];
    });
    return obj;
  }
};
querystring.encode = querystring.stringify; querystring.decode = querystring.parse;

// ---- url ------------------------------------------------------------------------------------
var url = {
  parse: function (s, parseQuery, slashesDenoteHost) {
    var u = gh.urlParse(String(s), !!slashesDenoteHost);
    if (parseQuery) u.query = querystring.parse(u.search ? u.search.substr(1) : '');
    return u;
  },
  format: function (u) {
    if (typeof u === 'string') u = url.parse(u);
    var auth = u.auth ? encodeURIComponent(u.auth).replace(/%3A/i, ':') + '@' : '';
    var protocol = u.protocol || '', host = '';
    if (u.host) host = auth + u.host;
    else if (u.hostname) host = auth + (u.hostname.indexOf(':') >= 0 ? '[' + u.hostname + ']' : u.hostname) + (u.port ? ':' + u.port : '');
    if (protocol && protocol.substr(-1) !== ':') protocol += ':';
    var search = u.search || '';
    if (!search && u.query && typeof u.query === 'object' && Object.keys(u.query).length) search = '?' + querystring.stringify(u.query);
    if (search && search.charAt(0) !== '?') search = '?' + search;
    var hash = u.hash || '';
    if (hash && hash.charAt(0) !== '#') hash = '#' + hash;
    var pathname = u.pathname || '';
    var slashes = u.slashes || /^(https?|ftp|gopher|file):?$/.test(protocol) ? '//' : '';
    if (host && pathname && pathname.charAt(0) !== '/') pathname = '/' + pathname;
    return protocol + (host || slashes && protocol === 'file:' ? slashes : '') + host + pathname + search + hash;
  },
  resolve: function (from, to) { return gh.urlResolve(String(from), String(to)); }
};

// ---- console --------------------------------------------------------------------------------
var console = {
  log: function () { gh.log('info', format.apply(null, arguments)); },
  info: function () { gh.log('info', format.apply(null, arguments)); },
  warn: function () { gh.log('warn', format.apply(null, arguments)); },
  error: function () { gh.log('error', format.apply(null, arguments)); },
  debug: function () { gh.log('debug', format.apply(null, arguments)); },
  trace: function () { gh.log('debug', format.apply(null, arguments) + '\n' + new Error().stack); },
  dir: function (o) { gh.log('info', inspect(o)); },
  time: function () {}, timeEnd: function () {},
  assert: function (c) { if (!c) throw new Error('AssertionError: ' + format.apply(null, slice.call(arguments, 1))); }
};

// ---- timers ---------------------------------------------------------------------------------
function timerArgs(fn, args) {
  if (typeof fn !== 'function') throw new TypeError('"callback" argument must be a function');
  return function () { fn.apply(null, args); };
}
global.setTimeout = function (fn, ms) { return gh.timer(timerArgs(fn, slice.call(arguments, 2)), Number(ms) || 0, false); };
global.setInterval = function (fn, ms) { return gh.timer(timerArgs(fn, slice.call(arguments, 2)), Number(ms) || 0, true); };
global.clearTimeout = global.clearInterval = function (id) { if (typeof id === 'number') gh.clearTimer(id); };
global.setImmediate = function (fn) { var c = { cancelled: false }; var f = timerArgs(fn, slice.call(arguments, 1)); gh.immediate(function () { if (!c.cancelled) f(); }); return c; };
global.clearImmediate = function (c) { if (c) c.cancelled = true; };

// ---- callback options (tables, mssql) ---------------------------------------------------------
function checkOptions(op, o, allowSys) {
  if (o === undefined || o === null) return {};
  var ok = typeof o === 'object' && (typeof o.success === 'function' || typeof o.error === 'function' || (allowSys && Array.isArray(o.systemProperties)));
  if (!ok) throw new Error("Invalid callback options passed to '" + op + "'. Callback options must be an object with at least one 'success' or 'error' property of type 'function' or a systemProperties property of type 'Array'.");
  return o;
}
function finish(op, options, item) {
  return function (err, res) {
    if (err) {
      if (err.serverItem !== undefined && typeof options.conflict === 'function') { options.conflict(err.serverItem); return; }
      if (typeof options.error === 'function') { options.error(err); return; }
      console.error("Error in '%s': %s", op, err && err.message);
      return;
    }
    if (item && res && typeof res === 'object' && !Array.isArray(res)) Object.keys(res).forEach(function (k) {
      Object.defineProperty(item, k, { value: res[k], writable: true, enumerable: true, configurable: true }); // never item.__proto__ = …
    });
    if (typeof options.success === 'function') options.success(item || res);
  };
}

// ---- tables ---------------------------------------------------------------------------------
function Query(table) {
  this._table = table; this._where = []; this._select = null; this._order = [];
  this._skip = 0; this._take = -1; this._total = false;
}
Query.prototype.where = function (c) {
  if (typeof c === 'function') this._where.push({ fn: c.toString(), args: slice.call(arguments, 1) });
  else if (typeof c === 'string') this._where.push({ odata: c });
  else if (c !== null && typeof c === 'object') this._where.push({ obj: c });
  else throw new Error('Expected a function, an object or an OData filter string in where.');
  return this;
};
Query.prototype.select = function () {
  var cols = Array.isArray(arguments[0]) ? arguments[0] : slice.call(arguments);
  if (cols.length === 1 && typeof cols[0] === 'string' && cols[0].indexOf(',') >= 0) cols = cols[0].split(',').map(function (s) { return s.trim(); });
  if (cols.length === 1 && typeof cols[0] === 'function') {
    // A projection, as the original's QueryJS: every column is read, and each result is mapped
    // through the function with this = the row.
    this._projection = cols[0]; this._select = null; return this;
  }
  cols.forEach(function (c) { if (typeof c !== 'string') throw new Error('Expected a string or a function, not ' + c); });
  this._select = cols; return this;
};
Query.prototype.orderBy = function () { slice.call(arguments).forEach(function (c) { this._order.push([String(c), false]); }, this); return this; };
Query.prototype.orderByDescending = function () { slice.call(arguments).forEach(function (c) { this._order.push([String(c), true]); }, this); return this; };
Query.prototype.skip = function (n) { this._skip = n | 0; return this; };
Query.prototype.take = function (n) { this._take = n | 0; return this; };
Query.prototype.includeTotalCount = function () { this._total = true; return this; };
Query.prototype.getComponents = function () { return { filters: this._where.slice(), selections: this._select, ordering: this._order.slice(), skip: this._skip, take: this._take, includeTotalCount: this._total }; };
Query.prototype.toOData = function () { return gh.odata(this._desc()); };
Query.prototype._desc = function () { return { where: this._where, select: this._select, order: this._order, skip: this._skip, take: this._take, total: this._total }; };
function project(q, rows) {
  if (typeof q._projection !== 'function' || !Array.isArray(rows)) return rows;
  return rows.map(function (row) { return q._projection.call(row); });
}
Query.prototype.read = function (options) {
  var self = this;
  options = checkOptions('read', options, true);
  gh.table('read', this._table, this._desc(), options.includeDeleted === true, options.systemProperties || null, function (err, res) {
    if (!err && res && res.results) { var r = project(self, res.results); r.totalCount = res.count; finish('read', options)(null, r); return; }
    finish('read', options)(err, err ? res : project(self, res));
  });
};

function Table(name) { this._name = name; }
['where', 'select', 'orderBy', 'orderByDescending', 'skip', 'take', 'includeTotalCount'].forEach(function (m) {
  Table.prototype[m] = function () { var q = new Query(this._name); return q[m].apply(q, arguments); };
});
Table.prototype.getTableName = function () { return this._name; };
Table.prototype.read = function (a, b) {
  if (a instanceof Query) return a.read(b);
  return new Query(this._name).read(a);
};
Table.prototype.insert = function (item, options) {
  options = checkOptions('insert', options, true);
  if (item === null || typeof item !== 'object' || Array.isArray(item)) throw new Error("Invalid item passed to 'insert'. The item must be an object.");
  gh.table('insert', this._name, item, false, options.systemProperties || null, finish('insert', options, item));
};
Table.prototype.update = function (item, options) {
  options = checkOptions('update', options, true);
  if (item === null || typeof item !== 'object' || item.id === undefined || item.id === null) throw new Error("Invalid item passed to 'update'. The item must be an object with an 'id' property.");
  gh.table('update', this._name, item, false, options.systemProperties || null, finish('update', options, item));
};
Table.prototype.del = function (itemOrId, options) {
  options = checkOptions('del', options, true);
  var id = itemOrId, version = null;
  if (itemOrId !== null && typeof itemOrId === 'object') { id = itemOrId.id; version = itemOrId.__version || itemOrId.version || null; }
  if (id === undefined || id === null) throw new Error("Invalid id passed to 'del'.");
  gh.table('del', this._name, { id: id, version: version }, false, null, finish('del', options));
};
Table.prototype.lookup = function (id, options) {
  options = checkOptions('lookup', options, true);
  gh.table('lookup', this._name, { id: id }, false, options.systemProperties || null, finish('lookup', options));
};
var tables = {
  getTable: function (name) {
    if (typeof name !== 'string' || name === '') throw new Error('getTable requires a table name.');
    return new Table(name);
  }
};
Object.defineProperty(tables, 'current', { enumerable: true, get: function () { var n = gh.currentTable(); return n ? new Table(n) : undefined; } });

// ---- mssql ----------------------------------------------------------------------------------
var mssql = {
  query: function (sql, params, options) {
    if (options === undefined && params !== null && typeof params === 'object' && !Array.isArray(params) && (typeof params.success === 'function' || typeof params.error === 'function')) { options = params; params = []; }
    if (params === undefined || params === null) params = [];
    if (!Array.isArray(params)) params = [params];
    options = checkOptions('query', options, false);
    var rows = [];
    gh.sql(String(sql), params.map(function (p) { return p instanceof Date ? { __date: p.toISOString() } : p; }), function (err, res) {
      if (err) { finish('query', options)(err); return; }
      if (typeof options.success === 'function') options.success(res);
    });
  },
  open: function (options) {
    var err = new Error('mssql.open is not supported: use mssql.query.');
    if (options && typeof options.error === 'function') gh.immediate(function () { options.error(err); }); else throw err;
  }
};
mssql.queryRaw = function (sql, params, options) {
  if (options === undefined && params && typeof params === 'object' && !Array.isArray(params)) { options = params; params = []; }
  options = checkOptions('queryRaw', options, false);
  mssql.query(sql, params, {
    success: function (rows) {
      var names = rows.length ? Object.keys(rows[0]) : [];
      if (options.success) options.success({ meta: names.map(function (n) { return { name: n }; }), rows: rows.map(function (r) { return names.map(function (n) { return r[n]; }); }) });
    },
    error: options.error
  });
};

// ---- push -----------------------------------------------------------------------------------
function lastOptions(args) { var o = args[args.length - 1]; return o && typeof o === 'object' && !Array.isArray(o) ? o : null; }
function pushFail(o, err) {
  if (o && typeof o.error === 'function') { gh.immediate(function () { o.error(err); }); return; }
  throw err;
}
function notConfigured() { pushFail(lastOptions(slice.call(arguments)), new Error('push is not configured')); }
var pushProxy = new Proxy({}, { get: function (t, k) { return typeof k === 'symbol' ? undefined : notConfigured; } });
var mpnsRetired = new Proxy({}, { get: function (t, k) {
  return typeof k === 'symbol' ? undefined : function () { pushFail(lastOptions(slice.call(arguments)), new Error('MPNS was retired by Microsoft in 2019: send to Windows devices with push.wns')); };
} });
var pushPlatforms = gh.pushPlatforms();
var push;
if (pushPlatforms.length === 0) {
  // Without Notification Hubs the original exposed only its direct clients (push.wns, push.mpns,
  // push.apns, push.gcm) and no push.send, which is how scripts such as runtimeInfo detect hub push.
  push = { wns: pushProxy, mpns: pushProxy, apns: pushProxy, gcm: pushProxy };
} else {
  var has = function (p) { return pushPlatforms.indexOf(p) >= 0; };
  // queue sends through the outbox and answers options.success({queued: n}) or options.error(err);
  // without an error callback a failure (an invalid tag expression, a payload over the platform's
  // limit) throws where the script called.
  var queue = function (kind, platform, target, payload, headers, expiry, options) {
    if (platform && !has(platform)) { pushFail(options, new Error('push is not configured for ' + platform + ' (no credentials)')); return; }
    var n;
    try { n = gh.pushSend(kind, platform, target, payload, headers || {}, expiry); }
    catch (e) { pushFail(options, e); return; }
    if (options && typeof options.success === 'function') gh.immediate(function () { options.success({ queued: n }); });
  };
  var expiryOf = function (e) {
    if (e === undefined || e === null) return undefined;
    if (e instanceof Date) return e.getTime();
    if (typeof e === 'number') return e < 1e11 ? e * 1000 : e; // apn: seconds since the epoch
    throw new Error('expiry must be a Date or a number of seconds since the epoch');
  };
  var jsonOf = function (p, what) {
    if (typeof p === 'string') { try { p = JSON.parse(p); } catch (e) { return null; } }
    if (!p || typeof p !== 'object' || Array.isArray(p)) throw new Error('The ' + what + ' parameter must be an object.');
    return p;
  };
  // APNs: the apn module's notification fields (alert, badge, sound, contentAvailable, payload,
  // expiry) or a full payload with aps.
  var apns = {
    send: function (target, payload, options) {
      options = options || {};
      var p = jsonOf(payload, 'payload'), body, expiry;
      if (p === null) throw new Error('The payload parameter must be an object.');
      if (p.aps) {
        body = {}; Object.keys(p).forEach(function (k) { if (k !== 'expiry') body[k] = p[k]; });
      } else {
        var aps = {};
        if (p.alert !== undefined) aps.alert = p.alert;
        if (p.badge !== undefined) aps.badge = p.badge;
        if (p.sound !== undefined) aps.sound = p.sound;
        if (p.contentAvailable || p['content-available']) aps['content-available'] = 1;
        if (p.category !== undefined) aps.category = p.category;
        body = { aps: aps };
        if (p.payload && typeof p.payload === 'object') Object.keys(p.payload).forEach(function (k) { if (k !== 'aps') body[k] = p.payload[k]; });
      }
      expiry = expiryOf(p.expiry);
      queue('native', 'apns', target, JSON.stringify(body), options.headers, expiry, options);
    }
  };
  // GCM: dpush's message (a string becomes data.message, an object of strings the data) or a full
  // GCM payload ({data, notification, ...}), mapped to FCM by the platform.
  var gcmBody = function (message) {
    if (typeof message === 'string') {
      var parsed = null;
      try { parsed = JSON.parse(message); } catch (e) { parsed = null; }
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) message = parsed;
      else return { data: { message: message } };
    }
    if (!message || typeof message !== 'object') throw new Error('The send method requires the second parameter to be a string or an object with string key value pairs.');
    if (message.data || message.notification) return message;
    return { data: message };
  };
  var gcm = {
    send: function (target, message, options) {
      if (arguments.length < 2) throw new Error('The send method requires 2 parameters: the recipientId(s) and message content.');
      options = options || {};
      queue('native', 'fcm', target, JSON.stringify(gcmBody(message)), options.headers, expiryOf(options.expiry), options);
    },
    sendAdvanced: function (content, retryCount, options) {
      if (!content || typeof content !== 'object') throw new Error('The sendAdvanced method requires the first parameter to be a content object.');
      options = options || {};
      var body = {};
      Object.keys(content).forEach(function (k) { if (k !== 'registration_ids') body[k] = content[k]; });
      queue('native', 'fcm', content.registration_ids || null, JSON.stringify(body), options.headers, expiryOf(options.expiry), options);
    }
  };
  // WNS: the wns module's helpers (sendToastText01 ... sendTileWideText11, sendBadge, sendRaw,
  // sendTile, sendToast, send), building the same XML.
  var wnsSpecs = { TileSquareBlock: [0, 2], TileSquareText01: [0, 4], TileSquareText02: [0, 2], TileSquareText03: [0, 4], TileSquareText04: [0, 1],
    TileWideText01: [0, 5], TileWideText02: [0, 9], TileWideText03: [0, 1], TileWideText04: [0, 1], TileWideText05: [0, 5], TileWideText06: [0, 10],
    TileWideText07: [0, 9], TileWideText08: [0, 10], TileWideText09: [0, 2], TileWideText10: [0, 9], TileWideText11: [0, 10], TileSquareImage: [1, 0],
    TileSquarePeekImageAndText01: [1, 4], TileSquarePeekImageAndText02: [1, 2], TileSquarePeekImageAndText03: [1, 4], TileSquarePeekImageAndText04: [1, 1],
    TileWideImage: [1, 0], TileWideImageCollection: [5, 0], TileWideImageAndText01: [1, 1], TileWideImageAndText02: [1, 2], TileWideBlockAndText01: [0, 6],
    TileWideBlockAndText02: [0, 3], TileWideSmallImageAndText01: [1, 1], TileWideSmallImageAndText02: [1, 5], TileWideSmallImageAndText03: [1, 1],
    TileWideSmallImageAndText04: [1, 2], TileWideSmallImageAndText05: [1, 2], TileWidePeekImageCollection01: [5, 2], TileWidePeekImageCollection02: [5, 5],
    TileWidePeekImageCollection03: [5, 1], TileWidePeekImageCollection04: [5, 1], TileWidePeekImageCollection05: [6, 2], TileWidePeekImageCollection06: [6, 1],
    TileWidePeekImageAndText01: [1, 1], TileWidePeekImageAndText02: [1, 5], TileWidePeekImage01: [1, 2], TileWidePeekImage02: [1, 5], TileWidePeekImage03: [1, 1],
    TileWidePeekImage04: [1, 1], TileWidePeekImage05: [2, 2], TileWidePeekImage06: [2, 1], ToastText01: [0, 1], ToastText02: [0, 2], ToastText03: [0, 2],
    ToastText04: [0, 3], ToastImageAndText01: [1, 1], ToastImageAndText02: [1, 2], ToastImageAndText03: [1, 2], ToastImageAndText04: [1, 3] };
  var wnsBadges = ['none', 'activity', 'alert', 'available', 'away', 'busy', 'newMessage', 'paused', 'playing', 'unavailable', 'error'];
  var wnsAudio = ['Default', 'IM', 'Mail', 'Reminder', 'SMS', 'Alarm', 'Looping.Alarm2', 'Looping.Call', 'Looping.Call2'];
  var audioPrefix = 'ms-winsoundevent:Notification.';
  var xmlEscape = function (t) { return String(t).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;'); };
  var bindingAttrs = function (payload) {
    var a = '';
    if (payload && typeof payload === 'object') ['fallback', 'lang', 'baseUri', 'branding', 'addImageQuery'].forEach(function (k) {
      if (typeof payload[k] === 'string' || typeof payload[k] === 'boolean') a += ' ' + k + '="' + xmlEscape(payload[k]) + '"';
    });
    return a;
  };
  var visualAttrs = function (o) {
    var a = '';
    ['lang', 'baseUri', 'branding', 'addImageQuery', 'version'].forEach(function (k) {
      if (typeof o[k] === 'string' || typeof o[k] === 'boolean' || typeof o[k] === 'number') a += ' ' + k + '="' + xmlEscape(o[k]) + '"';
    });
    return a;
  };
  var toastAttrs = function (type, o) {
    if (type !== 'toast') return '';
    if (o.launch !== undefined && typeof o.launch !== 'string') throw new Error('The options.launch must be a string value.');
    if (o.duration !== undefined && ['long', 'short'].indexOf(o.duration) < 0) throw new Error('The options.duration must be a string value from the following set: ["long","short"]');
    var a = '';
    if (o.duration) a += ' duration="' + o.duration + '"';
    if (o.launch) a += ' launch="' + xmlEscape(o.launch) + '"';
    return a;
  };
  var audioXML = function (type, o) {
    if (type !== 'toast' || typeof o.audio !== 'object' || o.audio === null) return '';
    var au = o.audio;
    if (au.loop !== undefined && typeof au.loop !== 'boolean') throw new Error('The options.audio.loop must be a boolean value.');
    if (au.silent !== undefined && typeof au.silent !== 'boolean') throw new Error('The options.audio.silent must be a boolean value.');
    if (typeof au.src === 'string') {
      if (!wnsAudio.some(function (s) { return s === au.src || audioPrefix + s === au.src; }))
        throw new Error('The options.audio.src must be a string value from the following set: ' + JSON.stringify(wnsAudio));
    } else if (au.silent !== undefined) throw new Error('The options.audio.src must be a string value from the following set: ' + JSON.stringify(wnsAudio));
    var r = '<audio';
    if (au.src) r += ' src="' + (au.src.indexOf(audioPrefix) === 0 ? au.src : audioPrefix + au.src) + '"';
    if (au.silent) r += ' silent="true"';
    if (au.loop) r += ' loop="true"';
    return r + '/>';
  };
  var wrapXML = function (type, bindings, o) {
    return '<' + type + toastAttrs(type, o) + '><visual' + visualAttrs(o) + '>' + bindings + '</visual>' + audioXML(type, o) + '</' + type + '>';
  };
  var createBinding = function (name, args) {
    var spec = wnsSpecs[name], images = spec[0], texts = spec[1], params = [], payload;
    if (args.length && typeof args[0] === 'object' && args[0] !== null) {
      payload = args.shift();
      for (var i = 1; i <= images; i++) {
        var src = payload['image' + i + 'src'], alt = payload['image' + i + 'alt'];
        if (src !== undefined && typeof src !== 'string') throw new Error('The image' + i + 'src property of the payload argument must be a string.');
        if (alt !== undefined && typeof alt !== 'string') throw new Error('The image' + i + 'alt property of the payload argument must be a string.');
        params.push(src || ''); params.push(alt || '');
      }
      for (var j = 1; j <= texts; j++) {
        var text = payload['text' + j];
        if (text !== undefined && text !== null && typeof text !== 'string') text = text.toString();
        params.push(text || '');
      }
    } else {
      while (args.length && typeof args[0] === 'string') params.push(args.shift());
    }
    if (params.length !== texts + images * 2)
      throw new Error('The ' + name + ' WNS notification type requires ' + (texts + images * 2) + ' text parameters to be specified (' + images +
        ' image(s) that require href and alt text each, and ' + texts + ' text field(s)), while only ' + params.length + ' parameter(s) have been provided.');
    var x = '<binding template="' + name + '"' + bindingAttrs(payload) + '>', k = 0;
    for (var a = 1; a <= images; a++) { x += '<image id="' + a + '" src="' + xmlEscape(params[k++]) + '" alt="' + xmlEscape(params[k++]) + '"/>'; }
    for (var b = 1; b <= texts; b++) { x += '<text id="' + b + '">' + xmlEscape(params[k++]) + '</text>'; }
    return x + '</binding>';
  };
  var wnsSend = function (target, payload, type, options) {
    options = options || {};
    if (['wns/toast', 'wns/badge', 'wns/tile', 'wns/raw'].indexOf(type) < 0) throw new Error('The type must be one of wns/toast, wns/badge, wns/tile or wns/raw.');
    var headers = { 'X-WNS-Type': type };
    if (options.headers && typeof options.headers === 'object') Object.keys(options.headers).forEach(function (h) { headers[h] = String(options.headers[h]); });
    queue('native', 'wns', target, String(payload), headers, expiryOf(options.expiry), options);
  };
  var wns = {
    send: function (target, payload, type, options) { wnsSend(target, payload, type, options); },
    sendRaw: function (target, payload, options) { wnsSend(target, typeof payload === 'string' ? payload : JSON.stringify(payload), 'wns/raw', options); },
    sendBadge: function (target, value, options) {
      var v = value, version = 1;
      if (value && typeof value === 'object') { v = value.value; version = value.version || 1; }
      if (typeof v !== 'string' && isNaN(v)) throw new Error('The badge value must be a string or a number.');
      if (!isNaN(v)) { if (v < 0) throw new Error('The badge numeric value must be greater than or equal to 0.'); }
      else if (wnsBadges.indexOf(v) < 0) throw new Error('The badge value must be either an integer greater than or equal to 0 or one of ' + JSON.stringify(wnsBadges));
      wnsSend(target, '<badge value="' + xmlEscape(v) + '" version="' + xmlEscape(version) + '"/>', 'wns/badge', options);
    }
  };
  var tileOrToast = function (type) {
    return function (target) {
      var args = slice.call(arguments, 1), bindings = '', options = {};
      for (var i = 0; i < args.length; i++) {
        var a = args[i];
        if (typeof a === 'string') {
          if (a.indexOf('<binding') !== 0) throw new Error('Every string argument must be a WNS binding XML. You can create binding XML using one of the wns.create<TemplateName>Binding methods.');
          bindings += a;
        } else if (a && typeof a === 'object' && typeof a.type === 'string') {
          if (!wnsSpecs[a.type]) throw new Error('Unrecognized type of a ' + type + ': ' + a.type);
          bindings += createBinding(a.type, [a]);
        } else if (a && typeof a === 'object') { options = a; break; }
        else throw new Error('Unsuported type of argument: ' + typeof a);
      }
      if (bindings === '') throw new Error('At least one binding must be specified.');
      wnsSend(target, wrapXML(type, bindings, options), 'wns/' + type, options);
    };
  };
  wns.sendTile = tileOrToast('tile');
  wns.sendToast = tileOrToast('toast');
  Object.keys(wnsSpecs).forEach(function (name) {
    var type = name.indexOf('Tile') === 0 ? 'tile' : 'toast';
    wns['create' + name + 'Binding'] = function () { return createBinding(name, slice.call(arguments)); };
    wns['create' + name] = function () {
      var args = slice.call(arguments), binding = createBinding(name, args);
      var o = args.length && typeof args[0] === 'object' && args[0] !== null ? args[0] : {};
      return wrapXML(type, binding, o);
    };
    wns['send' + name] = function (target) {
      var args = slice.call(arguments, 1), binding = createBinding(name, args);
      var o = args.length && typeof args[0] === 'object' && args[0] !== null ? args[0] : {};
      wnsSend(target, wrapXML(type, binding, o), 'wns/' + type, o);
    };
  });
  var webpush = {
    send: function (target, payload, options) {
      options = options || {};
      queue('native', 'webpush', target, typeof payload === 'string' ? payload : JSON.stringify(payload), options.headers, expiryOf(options.expiry), options);
    }
  };
  push = {
    apns: apns, gcm: gcm, wns: wns, webpush: webpush, mpns: mpnsRetired,
    // Notification Hubs' template send: tags (an expression, an array of tags, or null for every
    // device) and the properties the templates' $(name) placeholders take.
    send: function (tags, payload, options) {
      if (typeof options === 'function') { var cb = options; options = { success: function (r) { cb(null, r); }, error: function (e) { cb(e); } }; }
      var props = payload;
      if (typeof props === 'string') { try { props = JSON.parse(props); } catch (e) { throw new Error('The payload must be an object of template properties.'); } }
      if (!props || typeof props !== 'object' || Array.isArray(props)) throw new Error('The payload must be an object of template properties.');
      queue('template', '', tags === undefined ? null : tags, props, null, undefined, options || {});
    }
  };
}

global.Buffer = Buffer;
global.console = console;
global.tables = tables;
global.mssql = mssql;
global.push = push;
return {
  Buffer: Buffer, Query: Query, util: util, events: EventEmitter, querystring: querystring, url: url,
  buffer: { Buffer: Buffer, SlowBuffer: Buffer, INSPECT_MAX_BYTES: 50, kMaxLength: 0x3fffffff }
};
})`
