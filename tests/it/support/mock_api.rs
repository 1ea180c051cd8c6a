//! A mock WeChat of its own for tests that talk to its API directly (no tagcast in between).

use std::net::TcpListener;

use tagcast::mock_wechat::{MockAccountType, MockConfig, MockWeChat, RunningMock};

/// A mock playing a service account with these credentials and no callback, on a free loopback
/// port of the test's runtime.
pub fn start_service_mock(appid: &str, secret: &str) -> (MockWeChat, RunningMock) {
    let mock = MockWeChat::new(MockConfig {
        appid: appid.into(),
        secret: secret.into(),
        account_type: MockAccountType::Service,
        callback: None,
    });
    let running = mock.start(TcpListener::bind("127.0.0.1:0").expect("a free port")).expect("the mock starts");
    (mock, running)
}
