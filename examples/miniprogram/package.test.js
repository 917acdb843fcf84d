'use strict';

// node --test: the kit as a package. package.json's fields, the runtime
// against its declarations (index.d.ts), ES5 syntax, and what `npm pack`
// puts in the tarball.

var test = require('node:test');
var assert = require('node:assert/strict');
var fs = require('node:fs');
var nodePath = require('node:path');
var childProcess = require('node:child_process');

var dir = __dirname;
var pkg = JSON.parse(fs.readFileSync(nodePath.join(dir, 'package.json'), 'utf8'));
var runtimeFile = nodePath.join(dir, pkg.main);
var runtime = fs.readFileSync(runtimeFile, 'utf8');
var dts = fs.readFileSync(nodePath.join(dir, pkg.types), 'utf8');

test('package.json: a public package with main, types and a miniprogram folder, and no dependencies', function () {
  assert.equal(pkg.private, undefined);
  assert.equal(pkg.name, 'caddy-wechat-auth-miniprogram');
  assert.match(pkg.version, /^\d+\.\d+\.\d+$/);
  assert.equal(pkg.license, 'Apache-2.0');
  assert.equal(pkg.main, 'dist/index.js');
  assert.equal(pkg.types, 'dist/index.d.ts');
  // WeChat DevTools' "build npm" copies the `miniprogram` folder into
  // miniprogram_npm/<name>/, and require('<name>') loads its index.js.
  assert.ok(fs.statSync(nodePath.join(dir, pkg.miniprogram)).isDirectory());
  assert.equal(nodePath.join(pkg.miniprogram, 'index.js'), nodePath.normalize(pkg.main));
  assert.equal(nodePath.join(pkg.miniprogram, 'index.d.ts'), nodePath.normalize(pkg.types));
  assert.equal(pkg.dependencies, undefined, 'no runtime dependency');
  for (var name in pkg.devDependencies) {
    assert.match(pkg.devDependencies[name], /^\d+\.\d+\.\d+$/, name + ' is pinned to an exact version');
  }
  assert.ok(fs.existsSync(nodePath.join(dir, 'package-lock.json')));
  assert.match(fs.readFileSync(nodePath.join(dir, 'LICENSE'), 'utf8'), /Apache License\s+Version 2\.0, January 2004/);
});

test('the runtime exports exactly what index.d.ts declares', function () {
  var kit = require('.');
  var declared = [];
  var re = /^export declare (?:function|const) (\w+)/gm;
  var m;
  while ((m = re.exec(dts))) declared.push(m[1]);
  assert.deepEqual(Object.keys(kit).sort(), declared.sort());
  Object.keys(kit).forEach(function (k) {
    assert.equal(typeof kit[k], 'function', k);
  });
});

test('every error code the runtime makes is in index.d.ts', function () {
  var codes = {};
  var re = /makeError\(\s*'([a-z0-9_]+)'/g;
  var m;
  while ((m = re.exec(runtime))) codes[m[1]] = true;
  var list = Object.keys(codes).sort();
  assert.deepEqual(list, ['bad_response', 'invalid_argument', 'network_error', 'phone_denied', 'phone_quota_exceeded', 'unauthenticated', 'wx_login_failed']);
  list.forEach(function (code) {
    assert.ok(dts.indexOf("| '" + code + "'") !== -1, code + ' is declared');
  });
  assert.ok(/'http_' \+ res\.statusCode/.test(runtime) && dts.indexOf('`http_${number}`') !== -1, 'http_<status> is declared');
});

test('the runtime is ES5 plus Promise: it runs without "ES6 to ES5" compilation', function () {
  // Drop comments, then strings and regular expression literals, crudely but
  // enough for this file.
  var code = runtime
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/(^|[^:'"])\/\/.*$/gm, '$1')
    .replace(/'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"/g, "''")
    .replace(/\/(?:[^/\\\n]|\\.)+\/[gimsuy]*(?=[.,);\s])/g, '/x/');
  [/=>/, /`/, /\b(?:let|const|class|async|await|of)\s/, /\.\.\./].forEach(function (re) {
    assert.doesNotMatch(code, re);
  });
  assert.match(runtime, /^'use strict';$/m);
  assert.match(runtime, /module\.exports = \{/);
});

test('npm pack: exactly the runtime, its types, README, LICENSE and package.json', function (t) {
  var out;
  try {
    out = childProcess.execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: dir,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 60000
    });
  } catch (e) {
    if (e.code === 'ENOENT') {
      if (process.env.CI === 'true') throw new Error('npm is not installed; CI installs it (.ci/install-deps.sh)');
      t.skip('npm is not installed');
      return;
    }
    throw e;
  }
  var files = JSON.parse(out)[0].files.map(function (f) {
    return f.path;
  });
  assert.deepEqual(files.sort(), ['LICENSE', 'README.md', 'dist/index.d.ts', 'dist/index.js', 'package.json']);
});
