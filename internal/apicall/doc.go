// Package apicall is the HTTP plumbing the mini-program platform clients
// (platforms/qq, douyin, kuaishou, baidu and alipay) share: one logical
// call with a timeout, one retry of a transport failure or a busy answer,
// an observer, a capped body, the checks every answer goes through (HTTP
// status, HTML, not a JSON object), errors that wrap the calling package's
// own sentinels, and redaction of the app secret from everything an error
// can print. It also holds their open-data half (Sealed) and code checks.
//
// A platform whose requests or answers are shaped otherwise keeps the
// rest: Request.Encode builds each attempt's body (Alipay signs every
// attempt with a fresh timestamp), and Request.Decode reads the answer in
// place of the shared checks (Baidu believes an error object at any HTTP
// status; Alipay verifies a signature first).
//
// It mirrors what package wechat does for itself; wechat keeps its own
// copy because its behaviour is frozen by its tests.
package apicall
