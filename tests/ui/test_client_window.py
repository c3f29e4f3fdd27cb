"""The real widgets against a real server (offscreen)."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt

from qtchat.client import ChatClient, ClientState
from qtchat.client.settings import ClientSettings
from qtchat.protocol import Message
from qtchat.ui.chat_view import find_urls
from qtchat.ui.connect_dialog import ConnectDialog
from qtchat.ui.main_window import MainWindow
from tests.helpers import outcome


def online(qtbot, w: MainWindow, port: int, user: str = "alice") -> None:
    with qtbot.waitSignal(w.client.logged_in, timeout=5000):
        w.client.connect_to("127.0.0.1", port, user)
    qtbot.waitUntil(lambda: w.conversation.users.rowCount() >= 1)


def lines(w: MainWindow) -> list:
    w.conversation.log.flush()
    return w.conversation.log.lines


def test_dialog_shows_a_taken_name_inline(server, connect, qtbot):
    connect().login("bob")
    client = ChatClient()
    dialog = ConnectDialog(client, ClientSettings())
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.host.setEditText("127.0.0.1")
    dialog.port.setValue(server.port)
    dialog.user.setText("Bob")
    qtbot.mouseClick(dialog.connect_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(dialog.error.isVisible, timeout=5000)
    assert "already in use" in dialog.error.text()
    assert dialog.isVisible() and dialog.connect_button.isEnabled()
    dialog.user.setText("carol")
    with qtbot.waitSignal(dialog.accepted, timeout=5000):
        qtbot.mouseClick(dialog.connect_button, Qt.MouseButton.LeftButton)
    assert client.state is ClientState.ONLINE
    assert ClientSettings().user == "carol"  # remembered for next time
    client.quit()


def test_dialog_can_host_a_server_here(qtbot):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = ChatClient()
    dialog = ConnectDialog(client, ClientSettings())
    qtbot.addWidget(dialog)
    dialog.port.setValue(port)
    dialog.user.setText("host")
    dialog.hosting.setChecked(True)
    with qtbot.waitSignal(dialog.accepted, timeout=5000):
        dialog.start()
    assert dialog.server is not None and dialog.server.user_names() == ["host"]
    assert f":{port}" in dialog.hint.text()
    client.quit()
    dialog.server.shutdown()


def test_send_receive_and_user_list(server, connect, window, qtbot):
    bob = connect()
    bob.login("bob")
    online(qtbot, window, server.port)
    assert window.users_label.text() == "Users \N{EM DASH} 2"
    qtbot.keyClicks(window.input, "hello bob ~ ")
    window.input.insertPlainText("\U0001f600")  # QtTest types ASCII only
    qtbot.keyClick(window.input, Qt.Key.Key_Return)
    assert window.input.toPlainText() == ""
    assert bob.wait_event(Message, sender="alice").text == "hello bob ~ \U0001f600"
    qtbot.waitUntil(lambda: any(ln.own and not ln.pending and ln.id for ln in lines(window)))
    bob.say("hi alice")
    qtbot.waitUntil(lambda: any(ln.sender == "bob" for ln in lines(window)))
    carol = connect()
    carol.login("carol")
    qtbot.waitUntil(lambda: window.users_label.text() == "Users \N{EM DASH} 3")
    assert window.conversation.users.names == ["alice", "bob", "carol"]
    carol.close()
    qtbot.waitUntil(lambda: window.users_label.text() == "Users \N{EM DASH} 2")
    assert "Online" in window.state_label.text()


def test_html_from_users_is_shown_literally(server, connect, window, qtbot):
    bob = connect()
    bob.login("bob")
    online(qtbot, window, server.port)
    bob.say("<b>x</b> <img src=y> &amp;")
    qtbot.waitUntil(lambda: any(ln.sender == "bob" for ln in lines(window)))
    line = next(ln for ln in lines(window) if ln.sender == "bob")
    assert line.text == "<b>x</b> <img src=y> &amp;"
    layout = window.view.delegate._layout(line, 600)
    assert layout.text() == "<b>x</b> <img src=y> &amp;"  # laid out as plain characters
    assert window.conversation.log.data(window.conversation.log.index(line.row)) == "bob: <b>x</b> <img src=y> &amp;"


def test_shift_enter_newline_up_recalls_and_tab_completes(server, connect, window, qtbot):
    for name in ("priya", "prakash"):
        connect().login(name)
    online(qtbot, window, server.port)
    qtbot.waitUntil(lambda: window.conversation.users.rowCount() == 3)
    box = window.input
    qtbot.keyClicks(box, "first")
    qtbot.keyClick(box, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(box, "second")
    assert box.toPlainText() == "first\nsecond"
    qtbot.keyClick(box, Qt.Key.Key_Return)
    qtbot.keyClick(box, Qt.Key.Key_Up)
    assert box.toPlainText() == "first\nsecond"
    box.clear()
    qtbot.keyClicks(box, "pr")
    qtbot.keyClick(box, Qt.Key.Key_Tab)
    assert box.toPlainText() == "prakash: "
    qtbot.keyClick(box, Qt.Key.Key_Tab)
    assert box.toPlainText() == "priya: "
    qtbot.keyClicks(box, "and @pra")
    qtbot.keyClick(box, Qt.Key.Key_Tab)
    assert box.toPlainText() == "priya: and @prakash "
    assert window.focusWidget() is box  # Tab completed instead of moving the focus


def test_reconnect_after_restart_sends_queued_messages_once(make_server, connect, window, qtbot):
    first = make_server()
    port = first.port
    online(qtbot, window, port)
    with qtbot.waitSignal(window.client.connection_lost, timeout=5000):
        first.shutdown("restart")
    assert any("Connection lost" in ln.text for ln in lines(window))
    for text in ("while offline 1", "while offline 2"):
        qtbot.keyClicks(window.input, text)
        qtbot.keyClick(window.input, Qt.Key.Key_Return)
    pending = [ln for ln in lines(window) if ln.own]
    assert [ln.pending for ln in pending] == [True, True]
    assert window.pending_label.text() == "2 unsent"
    second = make_server(port=port)
    watcher = connect(second.port)
    watcher.login("watcher")
    qtbot.waitUntil(lambda: window.client.state is ClientState.ONLINE, timeout=10000)
    watcher.wait_for(lambda: len(watcher.of(Message)) == 2)
    qtbot.wait(300)
    assert [m.text for m in watcher.of(Message)] == ["while offline 1", "while offline 2"]
    qtbot.waitUntil(lambda: not any(ln.pending for ln in lines(window)))
    assert window.pending_label.text() == ""
    assert any(ln.text == "Reconnected." for ln in lines(window))


def test_autoscroll_only_at_the_bottom(server, connect, window, qtbot):
    bob = connect()
    bob.login("bob")
    online(qtbot, window, server.port)
    for i in range(80):
        bob.say(f"message {i}")
    qtbot.waitUntil(lambda: sum(ln.sender == "bob" for ln in lines(window)) == 80)
    qtbot.wait(50)
    view = window.view
    assert view.at_bottom
    view.verticalScrollBar().setValue(0)
    for i in range(3):
        bob.say(f"later {i}")
    qtbot.waitUntil(lambda: view.unseen == 3)
    assert view.verticalScrollBar().value() == 0
    assert view.new_button.isVisible() and "3 new messages" in view.new_button.text()
    qtbot.mouseClick(view.new_button, Qt.MouseButton.LeftButton)
    assert view.at_bottom and view.unseen == 0 and not view.new_button.isVisible()


def test_links_are_found_and_clickable(server, connect, window, qtbot):
    assert find_urls("see https://example.org/a_(b). and www.x.org, ok") == [
        (4, 29, "https://example.org/a_(b)"), (35, 44, "www.x.org")]
    bob = connect()
    bob.login("bob")
    online(qtbot, window, server.port)
    bob.say("\U0001f600 https://example.org/page")
    qtbot.waitUntil(lambda: any(ln.sender == "bob" for ln in lines(window)))
    qtbot.wait(50)
    view = window.view
    row = next(ln.row for ln in lines(window) if ln.sender == "bob")
    top = view._tops[row] - view.verticalScrollBar().value()
    x = view.delegate.text_x + view.delegate.fm.horizontalAdvance("\U0001f600 https://exa")
    with qtbot.waitSignal(view.link_activated, timeout=2000) as clicked:
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, top + 8))
    assert clicked.args == ["https://example.org/page"]


def test_mention_counts_in_the_title_when_inactive(server, connect, window, qtbot):
    bob = connect()
    bob.login("bob")
    online(qtbot, window, server.port)
    with qtbot.waitSignal(window.workspace.mentioned, timeout=3000):
        bob.say("alice: ping")
    if not window.isActiveWindow():
        assert window.windowTitle().startswith("(1) ")
        assert window.workspace.lobby.mentions == 1
    line = next(ln for ln in lines(window) if ln.sender == "bob")
    assert line.mention


def test_geometry_and_splitter_are_remembered(qtbot):
    first = MainWindow(ChatClient(), ClientSettings())
    qtbot.addWidget(first)
    first.resize(700, 500)
    first.show()
    first.splitter.setSizes([150, 400, 150])
    sizes = first.splitter.sizes()
    first._quitting = True
    first.close()
    second = MainWindow(ChatClient(), ClientSettings())
    qtbot.addWidget(second)
    second.show()
    assert second.size().width() == 700 and second.size().height() == 500
    assert second.splitter.sizes() == sizes


def test_qtchat_command_line(tmp_path):
    import os
    import subprocess
    import sys

    from qtchat import __version__

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, "-m", "qtchat", "--version"], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and __version__ in out.stdout
    out = subprocess.run([sys.executable, "-m", "qtchat", "--help"], capture_output=True, text=True, env=env)
    assert out.returncode == 0
    for flag in ("--host", "--port", "--user", "--serve"):
        assert flag in out.stdout


def test_qtchat_serve_hosts_and_quits_promptly_on_sigterm(tmp_path):
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path), HOME=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-m", "qtchat", "--serve", "--port", str(port), "--user", "host"],
                            env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                probe = socket.create_connection(("127.0.0.1", port), timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            proc.kill()
            raise AssertionError(f"the client never started hosting: {proc.communicate()[1][-3000:]}")
        probe.settimeout(10)
        probe.sendall(b'{"type":"hello","version":1,"user":"guest"}\n')
        data = b""
        while b'"host"' not in data:  # in the user list, or joining just after us
            chunk = probe.recv(65536)
            assert chunk, data
            data += chunk
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert time.monotonic() - start < 3
        probe.close()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_row_height_matches_what_is_drawn(window):
    from qtchat.client import ChatLine

    delegate = window.view.delegate
    for line in (ChatLine("msg", "a\u2028b\u2028c\u2028d", 0, sender="x"),
                 ChatLine("notice", "word " * 60, 0), ChatLine("msg", "one\ntwo\nthree", 0, sender="y")):
        height = delegate.height(line, 500)
        drawn = delegate._layout(line, delegate.text_width(500)).lineCount() * delegate.line_h
        assert height >= drawn, line.text


def test_self_test_flag_exchanges_a_message_with_a_real_server(tmp_path):
    import os
    import subprocess
    import sys

    from tests.server.test_cli import Proc

    server = Proc("--data-dir", str(tmp_path / "data"))
    try:
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
        out = subprocess.run([sys.executable, "-m", "qtchat", "--self-test", "--port", str(server.port)],
                             capture_output=True, text=True, env=env, timeout=60)
        assert out.returncode == 0, out.stderr
        assert "acknowledged" in out.stdout
    finally:
        server.stop()
    out = subprocess.run([sys.executable, "-m", "qtchat", "--self-test", "--port", str(server.port)],
                         capture_output=True, text=True, env=dict(os.environ, QT_QPA_PLATFORM="offscreen"), timeout=60)
    assert out.returncode == 1 and "login failed" in out.stderr


def test_install_desktop_entry_writes_the_entry_and_icons(tmp_path):
    import os
    import subprocess
    import sys

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_DATA_HOME=str(tmp_path))
    out = subprocess.run([sys.executable, "-m", "qtchat", "--install-desktop-entry"], capture_output=True,
                         text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    entry = (tmp_path / "applications" / "qtchat.desktop").read_text()
    assert "Icon=qtchat" in entry and "Exec=" in entry and "Exec=qtchat\n" not in entry
    assert (tmp_path / "icons" / "hicolor" / "48x48" / "apps" / "qtchat.png").exists()
    assert (tmp_path / "icons" / "hicolor" / "scalable" / "apps" / "qtchat.svg").exists()


def test_about_text_has_the_package_version():
    from qtchat import __version__, about_text

    assert __version__ != "0+unknown"
    assert about_text("qtchat").startswith(f"qtchat {__version__}\n")


def test_a_crowd_joining_is_one_line_and_a_kick_leaves_a_way_back(server, connect, window, qtbot):
    online(qtbot, window, server.port)
    crowd = [connect() for _ in range(7)]
    for i, c in enumerate(crowd):
        c.login(f"guest{i}")
    qtbot.waitUntil(lambda: any("7 people joined" in ln.text for ln in lines(window)), timeout=5000)
    assert not any(ln.text == "guest0 joined" for ln in lines(window))
    assert "and 2 more" in next(ln.text for ln in lines(window) if "7 people joined" in ln.text)
    with qtbot.waitSignal(window.client.login_failed, timeout=3000):
        outcome(qtbot, server.operator.kick("alice", "testing"))
    assert window.reconnect_action.isEnabled()  # offline after a kick, but not stuck
    assert not window.user_list.isEnabled()
    window.reconnect_action.trigger()
    qtbot.waitUntil(lambda: window.client.state is ClientState.ONLINE, timeout=5000)


def test_a_refused_first_login_is_not_logged_in_the_conversation(server, connect, window, qtbot):
    connect().login("alice")
    with qtbot.waitSignal(window.client.login_failed, timeout=3000):
        window.client.connect_to("127.0.0.1", server.port, "alice")
    qtbot.wait(50)
    assert not [ln for ln in lines(window) if ln.kind == "error"]


def test_dragging_selects_text_across_messages_and_ctrl_c_copies_it(server, connect, window, qtbot):
    from PySide6.QtGui import QGuiApplication

    bob = connect()
    bob.login("bob")
    online(qtbot, window, server.port)
    bob.say("first line \U0001f600 here")
    bob.say("second line")
    qtbot.waitUntil(lambda: sum(ln.sender == "bob" for ln in lines(window)) == 2)
    qtbot.wait(50)
    view = window.view
    rows = [ln.row for ln in lines(window) if ln.sender == "bob"]
    offset = view.verticalScrollBar().value()
    fm = view.delegate.fm
    start = QPoint(view.delegate.text_x + fm.horizontalAdvance("first "), view._tops[rows[0]] - offset + 8)
    end = QPoint(view.delegate.text_x + fm.horizontalAdvance("second"), view._tops[rows[1]] - offset + 8)
    qtbot.mousePress(view.viewport(), Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(view.viewport(), end)
    qtbot.mouseRelease(view.viewport(), Qt.MouseButton.LeftButton, pos=end)
    assert view.selected_text() == "line \U0001f600 here\nbob: second"
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QGuiApplication.clipboard().text() == "line \U0001f600 here\nbob: second"


def test_user_list_filter(server, connect, window, qtbot):
    for name in ("anna", "annabel", "bob"):
        connect().login(name)
    online(qtbot, window, server.port)
    qtbot.waitUntil(lambda: window.conversation.users.rowCount() == 4)
    qtbot.keyClicks(window.user_filter, "ANN")
    assert [window.user_proxy.index(r, 0).data() for r in range(window.user_proxy.rowCount())] == ["anna", "annabel"]
    window.user_filter.clear()
    assert window.user_proxy.rowCount() == 4


def test_joins_and_leaves_can_be_hidden_and_the_choice_is_remembered(server, connect, window, qtbot):
    online(qtbot, window, server.port)
    assert window.presence_action.isChecked()
    window.presence_action.trigger()  # View > Show joins and leaves: off
    assert not ClientSettings().show_presence
    quiet = connect()
    quiet.login("quietly")
    qtbot.waitUntil(lambda: "quietly" in window.conversation.users.names)
    quiet.close()
    qtbot.waitUntil(lambda: "quietly" not in window.conversation.users.names)
    window.workspace.open_private("bob")
    bob = connect()
    bob.login("bob")
    private = window.workspace.private("bob")
    assert private is not None
    qtbot.waitUntil(lambda: any(ln.text == "bob is online" for ln in lines(window)))  # private: still told
    window.workspace.activate(window.workspace.lobby)
    qtbot.wait(1700)  # longer than the notices are gathered for
    assert not any("quietly" in ln.text or "bob joined" in ln.text for ln in lines(window))
    window.presence_action.trigger()
    assert ClientSettings().show_presence
    connect().login("loudly")
    qtbot.waitUntil(lambda: any(ln.text == "loudly joined" for ln in lines(window)), timeout=5000)
