"""The main window: conversation, user list, input, status bar, notifications."""

from __future__ import annotations

import html
import time

from PySide6.QtCore import QEvent, QModelIndex, QSortFilterProxyModel, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QLabel,
    QLineEdit,
    QListView,
    QMainWindow,
    QSplitter,
    QSystemTrayIcon,
    QVBoxLayout,
    QWidget,
)

from qtchat.client import ChatClient, ChatLine, ClientState, Conversation
from qtchat.client.host import join_addresses
from qtchat.client.settings import ClientSettings
from qtchat.server import ChatServer

from .about import show_about
from .chat_view import ChatView
from .message_input import MessageInput

STATE_TEXT = {
    ClientState.OFFLINE: "\N{BLACK CIRCLE} Offline",
    ClientState.CONNECTING: "\N{BLACK CIRCLE} Connecting\N{HORIZONTAL ELLIPSIS}",
    ClientState.ONLINE: "\N{BLACK CIRCLE} Online",
    ClientState.WAITING: "\N{BLACK CIRCLE} Reconnecting\N{HORIZONTAL ELLIPSIS}",
}
STATE_COLOR = {
    ClientState.OFFLINE: "#9e9e9e",
    ClientState.CONNECTING: "#f9a825",
    ClientState.ONLINE: "#2e7d32",
    ClientState.WAITING: "#ef6c00",
}


class MainWindow(QMainWindow):
    def __init__(self, client: ChatClient, settings: ClientSettings, icon: QIcon | None = None) -> None:
        super().__init__()
        self.client = client
        self.settings = settings
        self.server: ChatServer | None = None
        self.conversation = Conversation(client, self)
        self._unread = 0
        self._quitting = False
        self.setWindowTitle("qtchat")
        if icon is not None:
            self.setWindowIcon(icon)

        self.view = ChatView()
        self.view.set_model(self.conversation.log)
        self.view.setAccessibleName("Messages")
        self.view.near_top.connect(self.conversation.load_older)
        self.input = MessageInput()
        self.input.complete_names = self.conversation.users.completions
        self.input.submitted.connect(self._on_submitted)
        chat = QWidget()
        chat_layout = QVBoxLayout(chat)
        chat_layout.setContentsMargins(0, 0, 0, 0)
        chat_layout.setSpacing(4)
        chat_layout.addWidget(self.view, 1)
        chat_layout.addWidget(self.input)

        self.users_label = QLabel("Users")
        self.users_label.setTextFormat(Qt.TextFormat.PlainText)
        self.users_label.setContentsMargins(6, 4, 6, 0)
        self.user_filter = QLineEdit()
        self.user_filter.setPlaceholderText("Find a user")
        self.user_filter.setClearButtonEnabled(True)
        self.user_proxy = QSortFilterProxyModel(self)
        self.user_proxy.setSourceModel(self.conversation.users)
        self.user_proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.user_filter.textChanged.connect(self.user_proxy.setFilterFixedString)
        self.user_list = QListView()
        self.user_list.setModel(self.user_proxy)
        self.user_list.setUniformItemSizes(True)
        self.user_list.setAccessibleName("Users")
        self.user_list.doubleClicked.connect(self._mention_user)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(self.users_label)
        side_layout.addWidget(self.user_filter)
        side_layout.addWidget(self.user_list, 1)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(chat)
        self.splitter.addWidget(side)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 0)
        self.splitter.setSizes([760, 200])
        self.splitter.setCollapsible(0, False)  # the user list may be dragged shut in a narrow window
        self.user_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.user_list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setCentralWidget(self.splitter)
        self.setTabOrder(self.input, self.view)
        self.setTabOrder(self.view, self.user_filter)
        self.setTabOrder(self.user_filter, self.user_list)

        self.state_label = QLabel()
        self.server_label = QLabel()
        self.latency_label = QLabel()
        self.pending_label = QLabel()
        for label in (self.state_label, self.server_label, self.latency_label, self.pending_label):
            label.setTextFormat(Qt.TextFormat.PlainText)
        bar = self.statusBar()
        bar.addWidget(self.state_label)
        bar.addWidget(self.server_label, 1)
        bar.addPermanentWidget(self.pending_label)
        bar.addPermanentWidget(self.latency_label)

        self._retry_at = 0.0
        self._countdown = QTimer(self)
        self._countdown.timeout.connect(self._tick_countdown)
        self._build_menus()
        self.tray: QSystemTrayIcon | None = None
        if QSystemTrayIcon.isSystemTrayAvailable() and icon is not None:
            self.tray = QSystemTrayIcon(icon, self)
            self.tray.setToolTip("qtchat")
            self.tray.activated.connect(self._raise)
            self.tray.show()

        c = client
        c.state_changed.connect(self._on_state)
        c.logged_in.connect(self._on_logged_in)
        c.latency_changed.connect(lambda ms: self.latency_label.setText(f"{ms} ms"))
        c.pending_changed.connect(self._on_pending)
        c.reconnect_scheduled.connect(self._on_reconnect_scheduled)
        c.closed.connect(self._on_client_closed)
        self.conversation.users.count_changed.connect(lambda n: self.users_label.setText(f"Users \N{EM DASH} {n}"))
        self.conversation.mentioned.connect(self._on_mentioned)
        self.conversation.activity.connect(self._on_activity)
        self._on_state(c.state.value)
        self._restore()
        self.input.setFocus()

    # ------------------------------------------------------------ menus

    def _build_menus(self) -> None:
        chat = self.menuBar().addMenu("&Chat")
        connect_action = QAction("&Connect to\N{HORIZONTAL ELLIPSIS}", self)
        connect_action.setShortcut(QKeySequence("Ctrl+N"))
        connect_action.triggered.connect(lambda: self.open_connect_dialog())  # noqa: PLW0108 (not the bool)
        chat.addAction(connect_action)
        self.reconnect_action = QAction("&Reconnect now", self)
        self.reconnect_action.setShortcut(QKeySequence("Ctrl+R"))
        self.reconnect_action.triggered.connect(self._reconnect)
        chat.addAction(self.reconnect_action)
        chat.addSeparator()
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        quit_action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        quit_action.triggered.connect(self.close)
        chat.addAction(quit_action)
        help_menu = self.menuBar().addMenu("&Help")
        about = QAction("&About qtchat", self)
        about.triggered.connect(self._about)
        help_menu.addAction(about)

    def open_connect_dialog(self, error: str | None = None) -> bool:
        """Ask where to connect (or whether to host); True once logged in."""
        from .connect_dialog import ConnectDialog

        dialog = ConnectDialog(self.client, self.settings, self if self.isVisible() else None)
        dialog.setWindowIcon(self.windowIcon())
        if error:
            dialog.show_error(error)
        if dialog.exec() != ConnectDialog.DialogCode.Accepted:
            if dialog.server is not None and dialog.server is not self.server:
                dialog.server.shutdown("cancelled")
            return False
        if dialog.server is not None:
            self.set_server(dialog.server)
        return True

    def _reconnect(self) -> None:
        c = self.client
        if c.state is ClientState.WAITING:
            c.reconnect_now()
        elif c.state is ClientState.OFFLINE and c.host:
            c.connect_to(c.host, c.port, c.user)

    def _about(self) -> None:
        show_about(self, "qtchat")

    # ------------------------------------------------------------ hosting

    def set_server(self, server: ChatServer | None) -> None:
        """Own a server hosted in this process; its address shows in the status bar."""
        self.server = server
        if server is not None:
            server.stopped.connect(self._show_server)
        self._show_server()

    def _show_server(self) -> None:
        c = self.client
        if self.server is not None and self.server.is_listening:
            where = ", ".join(join_addresses(self.server))
            self.server_label.setText(f"Hosting \N{EM DASH} others join at {where}")
        elif self.server is not None:
            self.server_label.setText("Hosting stopped")
        elif c.welcome is not None:
            name = f"{c.welcome.name} " if c.welcome.name else ""
            self.server_label.setText(f"{name}{c.host}:{c.port} as {c.me}")
        else:
            self.server_label.setText(f"{c.host}:{c.port}" if c.host else "")

    # ------------------------------------------------------------ client events

    def _on_state(self, state: str) -> None:
        s = ClientState(state)
        self.state_label.setText(STATE_TEXT[s])
        self.state_label.setStyleSheet(f"color: {STATE_COLOR[s]};")
        self.reconnect_action.setEnabled(s is ClientState.WAITING or (s is ClientState.OFFLINE and bool(self.client.host)))
        self.user_list.setEnabled(s is ClientState.ONLINE)  # a list from before the loss is not who is here
        if s is not ClientState.ONLINE:
            self.latency_label.setText("")
        if s is not ClientState.WAITING:
            self._countdown.stop()
        self._show_server()

    def _on_logged_in(self, welcome: object) -> None:
        self._show_server()
        self._update_title()

    def _on_reconnect_scheduled(self, seconds: float) -> None:
        self._retry_at = time.monotonic() + seconds
        self._tick_countdown()
        self._countdown.start(1000)

    def _tick_countdown(self) -> None:
        left = max(0, round(self._retry_at - time.monotonic()))
        self.state_label.setText(f"{STATE_TEXT[ClientState.WAITING]} in {left} s (Ctrl+R: now)")

    def _on_pending(self, count: int) -> None:
        self.pending_label.setText(f"{count} unsent" if count else "")

    def _on_submitted(self, text: str) -> None:
        self.view.scroll_to_bottom()
        self.conversation.send(text)

    def _mention_user(self, index: QModelIndex) -> None:
        name = self.user_proxy.data(index)
        if name:
            self.input.insertPlainText(f"{name}: " if not self.input.toPlainText() else f"{name} ")
            self.input.setFocus()

    # ------------------------------------------------------------ notifications

    def _on_mentioned(self, line: ChatLine) -> None:
        if self.isActiveWindow():
            return
        self._unread += 1
        self._update_title()
        QApplication.alert(self)
        if self.tray is not None and QSystemTrayIcon.supportsMessages():
            # notification daemons read a little HTML in these strings: escape it
            self.tray.showMessage(html.escape(f"{line.sender} mentioned you"), html.escape(line.text[:200]),
                                  QSystemTrayIcon.MessageIcon.Information, 8000)

    def _on_activity(self) -> None:
        if not self.isActiveWindow():
            self._unread += 1
            self._update_title()

    def _update_title(self) -> None:
        me = self.client.me or self.client.user
        base = f"qtchat \N{EM DASH} {me}" if me else "qtchat"
        self.setWindowTitle(f"({self._unread}) {base}" if self._unread else base)

    def _raise(self) -> None:
        self.showNormal()
        self.raise_()
        self.activateWindow()

    def event(self, e: QEvent) -> bool:
        if e.type() == QEvent.Type.WindowActivate and self._unread:
            self._unread = 0
            self._update_title()
        return super().event(e)

    # ------------------------------------------------------------ geometry and closing

    def _restore(self) -> None:
        geometry = self.settings.geometry("main")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(980, 640)
        splitter = self.settings.geometry("splitter")
        if splitter is not None:
            self.splitter.restoreState(splitter)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.settings.set_geometry("main", self.saveGeometry())
        self.settings.set_geometry("splitter", self.splitter.saveState())
        self.settings.sync()
        if self.tray is not None:
            self.tray.hide()
        if not self._quitting:
            self._quitting = True
            self.client.quit()  # says bye; closed() quits the application
            QTimer.singleShot(1500, QGuiApplication.quit)  # promptly, whatever the network does
        super().closeEvent(event)

    def _on_client_closed(self) -> None:
        if not self._quitting:
            return
        if self.server is not None:
            self.server.stopped.connect(QGuiApplication.quit)
            self.server.shutdown("the host closed qtchat")
        else:
            QGuiApplication.quit()
