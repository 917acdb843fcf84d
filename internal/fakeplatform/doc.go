// Package fakeplatform is the body the fakes of the platform clients
// share. Fake is the whole of platforms/qq/qqtest,
// platforms/douyin/douyintest and platforms/kuaishou/kuaishoutest: users
// named by their codes, single-use codes, a new session key per login,
// deterministic openids, the FailNext/RespondNext/SetDelay knobs, sealing
// of open data, and the /_mock/ endpoints of wechattest. What differs per
// platform (how the login request is read, the envelope of a success and
// of an error, the errcodes) is a Platform.
//
// The fakes whose platform is further from WeChat's
// (platforms/baidu/baidutest, platforms/alipay/alipaytest) take the
// pieces instead: Users (records and single-use codes), Knobs (per-API
// failures, raw answers, delays and counters), ReadBody, the /_mock/
// handlers (ServeSeal, ServeSealPhone, ServeHelp, MockUser, MockError),
// DefaultPhone and NewSessionKey.
package fakeplatform
