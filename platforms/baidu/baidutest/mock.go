package baidutest

// The /_mock/ endpoints are not Baidu's. They stand in for the smart
// program in a demo: with them, curl can do what the getPhoneNumber
// button does.

const help = `baidutest: a fake Baidu smart-program server API. NOT Baidu, not for production.

Baidu endpoint:
  POST /oauth/jscode2sessionkey   form code, client_id (App Key), sk (App Secret)

Codes name users: "alice" and "alice:2" are codes of user alice.
Each code works once (invalid_grant after). A code starting with "bad"
or containing a space is invalid_grant. Every login gives a new
24-byte session_key.

Helpers:
  GET  /_mock/seal_phone?user=alice   -> {"encryptedData","iv"}: {"mobile": ...},
                                         sealed with alice's current session_key
  POST /_mock/seal?user=alice  {...}  -> {"encryptedData","iv"}: the JSON object,
                                         sealed the same way, with the App Key
  (409 if the user has not logged in yet: log in with code "alice" first)
`
