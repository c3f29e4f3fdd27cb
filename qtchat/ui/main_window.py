"""The main window: conversation, user list, input, status bar, notifications."""

from __future__ import annotations

import html
import time

from PySide6.QtCore import QEvent, QModelIndex, QObject, QPoint, QSortFilterProxyModel, Qt, QTimer
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QGuiApplication,
    QIcon,
    QKeyEvent,
    QKeySequence,
    QPalette,
    QResizeEvent,
    QTextCursor,
)
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListView,
    QMainWindow,
    QMenu,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QSystemTrayIcon,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from qtchat.client import ChatClient, ChatLine, ClientState, Conversation, Reason, Workspace
from qtchat.client.models import literal_html
from qtchat.client.settings import ClientSettings
from qtchat.hosting import join_addresses
from qtchat.protocol import MIN_PASSWORD, Message
from qtchat.server import ChatServer

from .about import show_about
from .chat_view import ChatView
from .message_input import MessageInput
from .search_panel import SearchPanel
from .sidebar import Sidebar
from .wording import STATE_TEXT, certificate_heading, connection_lost_text, reason_text

STATE_COLOR = {
    ClientState.OFFLINE: "#9e9e9e",
    ClientState.CONNECTING: "#f9a825",
    ClientState.ONLINE: "#2e7d32",
    ClientState.WAITING: "#ef6c00",
}
SEARCH_WIDTH = 320  # the side panel while it shows search results


class ElidedLabel(QLabel):
    """One line of plain text, shortened with an ellipsis to fit; the whole text in the tooltip."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setMinimumWidth(1)
        self._full = ""

    def set_full_text(self, text: str) -> None:
        self._full = text
        self.setToolTip(literal_html(text))
        self._elide()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        one_line = " ".join(self._full.split())
        self.setText(self.fontMetrics().elidedText(one_line, Qt.TextElideMode.ElideRight, max(0, self.width() - 4)))


class MainWindow(QMainWindow):
    def __init__(self, client: ChatClient, settings: ClientSettings, icon: QIcon | None = None) -> None:
        super().__init__()
        self.client = client
        self.settings = settings
        self.server: ChatServer | None = None
        self.workspace = Workspace(client, self)
        self.views: dict[Conversation, ChatView] = {}
        self._drafts: dict[Conversation, str] = {}
        self._rooms_restored_for: tuple[str, int, str] | None = None
        self._quitting = False
        self.setWindowTitle("qtchat")
        if icon is not None:
            self.setWindowIcon(icon)

        # left: the conversations
        self.sidebar = Sidebar(self.workspace.model)
        self.sidebar.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.sidebar.customContextMenuRequested.connect(self._sidebar_menu)
        self.sidebar.selectionModel().currentChanged.connect(self._on_sidebar_current)
        conversations_label = QLabel("Conversations")
        conversations_label.setContentsMargins(6, 4, 0, 0)
        self.join_button = QToolButton()
        self.join_button.setText("+")
        self.join_button.setToolTip("Join or create a room (Ctrl+J)")
        self.join_button.setAccessibleName("Join a room")
        self.join_button.setAutoRaise(True)
        self.join_button.clicked.connect(self.open_room_dialog)
        header = QHBoxLayout()
        header.setContentsMargins(0, 0, 0, 0)
        header.addWidget(conversations_label, 1)
        header.addWidget(self.join_button)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addLayout(header)
        left_layout.addWidget(self.sidebar, 1)

        # middle: the active conversation's topic, messages and the input
        self.topic_label = ElidedLabel()
        self.topic_label.setContentsMargins(6, 4, 6, 2)
        self.topic_label.setAccessibleName("Topic")
        self.search_field = QLineEdit()
        self.search_field.setPlaceholderText("Search messages (Ctrl+F)")
        self.search_field.setClearButtonEnabled(True)
        self.search_field.setAccessibleName("Search messages")
        self.search_field.setMinimumWidth(200)
        self.search_field.setMaximumWidth(260)
        self.search_field.returnPressed.connect(lambda: self.search(self.search_field.text()))
        self.search_field.installEventFilter(self)
        top_row = QHBoxLayout()
        top_row.setContentsMargins(0, 0, 4, 0)
        top_row.addWidget(self.topic_label, 1)
        top_row.addWidget(self.search_field)
        # shown while a room is opened at a search result, older than its newest messages
        self.context_bar = QWidget()
        self.context_bar.setAutoFillBackground(True)
        self.context_bar.setBackgroundRole(QPalette.ColorRole.AlternateBase)
        self.context_label = QLabel("You are reading older messages, around a search result.")
        self.context_label.setTextFormat(Qt.TextFormat.PlainText)
        self.context_button = QPushButton("Jump to the newest ↓")
        self.context_button.setToolTip("Back to the newest messages (Ctrl+End)")
        self.context_button.clicked.connect(lambda: self.workspace.active.leave_context())  # noqa: PLW0108
        bar_layout = QHBoxLayout(self.context_bar)
        bar_layout.setContentsMargins(8, 2, 4, 2)
        bar_layout.addWidget(self.context_label, 1)
        bar_layout.addWidget(self.context_button)
        self.context_bar.hide()
        self.stack = QStackedWidget()
        self.input = MessageInput()
        self.input.submitted.connect(self._on_submitted)
        chat = QWidget()
        chat_layout = QVBoxLayout(chat)
        chat_layout.setContentsMargins(0, 0, 0, 0)
        chat_layout.setSpacing(4)
        chat_layout.addLayout(top_row)
        chat_layout.addWidget(self.context_bar)
        chat_layout.addWidget(self.stack, 1)
        chat_layout.addWidget(self.input)

        # right: who is in it
        self.users_label = QLabel("Users")
        self.users_label.setTextFormat(Qt.TextFormat.PlainText)
        self.users_label.setContentsMargins(6, 4, 6, 0)
        self.user_filter = QLineEdit()
        self.user_filter.setPlaceholderText("Find a user")
        self.user_filter.setClearButtonEnabled(True)
        self.user_proxy = QSortFilterProxyModel(self)
        self.user_proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.user_filter.textChanged.connect(self.user_proxy.setFilterFixedString)
        self.user_list = QListView()
        self.user_list.setModel(self.user_proxy)
        self.user_list.setUniformItemSizes(True)
        self.user_list.setAccessibleName("Users")
        self.user_list.setToolTip("Double-click to talk privately")
        self.user_list.doubleClicked.connect(self._message_user)
        self.user_list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.user_list.customContextMenuRequested.connect(self._user_menu)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(self.users_label)
        side_layout.addWidget(self.user_filter)
        side_layout.addWidget(self.user_list, 1)
        # or the results of a search, in the same place
        self.search_panel = SearchPanel(self.workspace.search)
        self.search_panel.result_activated.connect(self._open_result)
        self.search_panel.closed.connect(self.close_search)
        self.side_stack = QStackedWidget()
        self.side_stack.addWidget(side)
        self.side_stack.addWidget(self.search_panel)
        self.users_page = side

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(chat)
        self.splitter.addWidget(self.side_stack)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 0)
        self.splitter.setSizes([170, 620, 190])
        self.splitter.setCollapsible(1, False)  # the side lists may be dragged shut in a narrow window
        self.user_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.user_list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setCentralWidget(self.splitter)
        self.setTabOrder(self.input, self.stack)
        self.setTabOrder(self.stack, self.sidebar)
        self.setTabOrder(self.sidebar, self.user_filter)
        self.setTabOrder(self.user_filter, self.user_list)

        self.state_label = QLabel()
        self.server_label = QLabel()
        self.latency_label = QLabel()
        self.pending_label = QLabel()
        self.tls_label = QLabel()
        for label in (self.state_label, self.server_label, self.latency_label, self.pending_label, self.tls_label):
            label.setTextFormat(Qt.TextFormat.PlainText)
        bar = self.statusBar()
        bar.addWidget(self.state_label)
        bar.addWidget(self.server_label, 1)
        bar.addPermanentWidget(self.pending_label)
        bar.addPermanentWidget(self.tls_label)
        bar.addPermanentWidget(self.latency_label)
        self._dialog_open = False

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
        c.connection_lost.connect(lambda reason: self.workspace.tell_all(connection_lost_text(reason), error=True))
        c.login_failed.connect(self._on_login_failed)
        c.latency_changed.connect(lambda ms: self.latency_label.setText(f"{ms} ms"))
        c.pending_changed.connect(self._on_pending)
        c.reconnect_scheduled.connect(self._on_reconnect_scheduled)
        c.closed.connect(self._on_client_closed)
        c.account_changed.connect(lambda registered, op: self._update_account_actions())
        c.password_changed.connect(lambda: self.workspace.lobby.notice("Your password was changed."))
        # a certificate problem on a reconnect: the connect dialog explains it and offers the way on
        c.certificate_unknown.connect(lambda *_: self._certificate_problem())
        c.certificate_changed.connect(lambda *_: self._certificate_problem())
        ws = self.workspace
        ws.conversation_added.connect(self._add_view)
        ws.conversation_removed.connect(self._remove_view)
        ws.activated.connect(self._on_activated)
        ws.mentioned.connect(self._on_mentioned)
        ws.unread_changed.connect(lambda n: self._update_title())
        ws.rooms_changed.connect(self._save_rooms)
        ws.set_looking(False)  # until the window is shown and active
        ws.set_show_presence(settings.show_presence)
        for conv in ws.conversations:
            self._add_view(conv)
        self._on_activated(ws.active)
        self._on_state(c.state.value)
        self._restore()
        self.input.setFocus()

    @property
    def conversation(self) -> Conversation:
        """The conversation the user looks at."""
        return self.workspace.active

    @property
    def view(self) -> ChatView:
        return self.views[self.workspace.active]

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
        join_action = QAction("&Join a room\N{HORIZONTAL ELLIPSIS}", self)
        join_action.setShortcut(QKeySequence("Ctrl+J"))
        join_action.triggered.connect(self.open_room_dialog)
        chat.addAction(join_action)
        self.leave_action = QAction("&Leave this room", self)
        self.leave_action.setShortcut(QKeySequence("Ctrl+W"))
        self.leave_action.triggered.connect(lambda: self.workspace.close(self.workspace.active))
        chat.addAction(self.leave_action)
        self.register_action = QAction("Re&gister this name\N{HORIZONTAL ELLIPSIS}", self)
        self.register_action.triggered.connect(self.register_name)
        chat.addAction(self.register_action)
        self.password_action = QAction("Change &password\N{HORIZONTAL ELLIPSIS}", self)
        self.password_action.triggered.connect(self.change_password)
        self.password_action.setEnabled(False)
        chat.addAction(self.password_action)
        previous_action = QAction("&Previous conversation", self)
        previous_action.setShortcut(QKeySequence("Alt+Up"))
        previous_action.triggered.connect(lambda: self._step(-1))
        chat.addAction(previous_action)
        next_action = QAction("Ne&xt conversation", self)
        next_action.setShortcut(QKeySequence("Alt+Down"))
        next_action.triggered.connect(lambda: self._step(1))
        chat.addAction(next_action)
        find_action = QAction("&Search messages…", self)
        find_action.setShortcut(QKeySequence.StandardKey.Find)
        find_action.triggered.connect(self._focus_search)
        chat.addAction(find_action)
        newest_action = QAction("Jump to the &newest messages", self)
        newest_action.setShortcut(QKeySequence("Ctrl+End"))
        newest_action.triggered.connect(self._jump_to_newest)
        chat.addAction(newest_action)
        chat.addSeparator()
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        quit_action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        quit_action.triggered.connect(self.close)
        chat.addAction(quit_action)
        view_menu = self.menuBar().addMenu("&View")
        self.presence_action = QAction("Show &joins and leaves", self)
        self.presence_action.setCheckable(True)
        self.presence_action.setChecked(self.settings.show_presence)
        self.presence_action.toggled.connect(self._set_show_presence)
        view_menu.addAction(self.presence_action)
        help_menu = self.menuBar().addMenu("&Help")
        about = QAction("&About qtchat", self)
        about.triggered.connect(self._about)
        help_menu.addAction(about)

    def _set_show_presence(self, on: bool) -> None:
        self.settings.show_presence = on
        self.workspace.set_show_presence(on)

    def open_connect_dialog(self, error: str | None = None) -> bool:
        """Ask where to connect (or whether to host); True once logged in."""
        from .connect_dialog import ConnectDialog

        dialog = ConnectDialog(self.client, self.settings, self if self.isVisible() else None)
        dialog.setWindowIcon(self.windowIcon())
        problem = self.client.certificate_problem
        if problem is not None and error:
            dialog.show_certificate_problem(problem, error)
        elif error:
            dialog.show_error(error)
        self._dialog_open = True
        try:
            accepted = dialog.exec() == ConnectDialog.DialogCode.Accepted
        finally:
            self._dialog_open = False
        if not accepted:
            if dialog.server is not None and dialog.server is not self.server:
                dialog.server.shutdown("cancelled")
            return False
        if dialog.server is not None:
            self.set_server(dialog.server)
        return True

    def register_name(self) -> None:
        """Ask for a password (twice) and register the name we are logged in with."""
        echo = QLineEdit.EchoMode.Password
        title = f"Register {self.client.me}"
        password, ok = QInputDialog.getText(self, title, f"Password (at least {MIN_PASSWORD} characters):", echo)
        if not ok or not password:
            return
        again, ok = QInputDialog.getText(self, title, "The same password again:", echo)
        if not ok:
            return
        if again != password:
            self.workspace.lobby.error("Not registered: the two passwords differ.")
        elif len(password) < MIN_PASSWORD:
            self.workspace.lobby.error(f"Not registered: a password needs at least {MIN_PASSWORD} characters.")
        else:
            try:
                self.client.register_name(password)
            except ValueError as exc:
                self.workspace.lobby.error(f"Not registered: {exc}")

    def change_password(self) -> None:
        """Ask for the current password and the new one (twice), and wait for the server's answer."""
        from .password_dialog import PasswordDialog

        if self.client.state is not ClientState.ONLINE or not self.client.registered:
            return
        dialog = PasswordDialog(self.client, self)
        dialog.exec()
        dialog.deleteLater()

    def _update_account_actions(self) -> None:
        online = self.client.state is ClientState.ONLINE
        self.register_action.setEnabled(online and not self.client.registered)
        self.password_action.setEnabled(online and self.client.registered)

    def open_room_dialog(self) -> None:
        from .room_dialog import RoomDialog

        dialog = RoomDialog(self.client, self)
        if dialog.exec() == RoomDialog.DialogCode.Accepted and dialog.room_name:
            self.workspace.join(dialog.room_name)
        dialog.deleteLater()

    # ------------------------------------------------------------ search

    def search(self, query: str) -> None:
        """Search the history on the server; the results replace the user list until closed."""
        if not query.strip():
            self.close_search()
            return
        self.side_stack.setCurrentWidget(self.search_panel)
        sizes = self.splitter.sizes()
        if sizes[2] < SEARCH_WIDTH:  # room for the results (the side may even have been dragged shut)
            self.splitter.setSizes([sizes[0], max(200, sizes[1] + sizes[2] - SEARCH_WIDTH), SEARCH_WIDTH])
        self.search_panel.search(query)

    def close_search(self) -> None:
        self.side_stack.setCurrentWidget(self.users_page)
        self.workspace.search.clear()
        self.input.setFocus()

    def _focus_search(self) -> None:
        self.search_field.setFocus()
        self.search_field.selectAll()

    def _open_result(self, msg: Message) -> None:
        self.workspace.show_message(msg.room, msg.id)

    def _jump_to_newest(self) -> None:
        conv = self.workspace.active
        if conv.context is not None:
            conv.leave_context()
        else:
            self.view.scroll_to_bottom()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.search_field and event.type() == QEvent.Type.KeyPress and \
                isinstance(event, QKeyEvent) and event.key() == Qt.Key.Key_Escape:
            self.search_field.clear()
            self.close_search()
            return True
        return super().eventFilter(watched, event)

    def _reconnect(self) -> None:
        c = self.client
        if c.state is ClientState.WAITING:
            c.reconnect_now()
        elif c.state is ClientState.OFFLINE and c.host:
            c.connect_to(c.host, c.port, c.user, tls=c.tls)

    def _certificate_problem(self) -> None:
        """The certificate changed (or is no longer trusted) on a reconnect: ask in the connect dialog."""
        c = self.client
        if self._dialog_open or c.welcome is None or not self.isVisible():
            return  # the dialog (or the first login's handler) shows it

        def ask() -> None:
            problem = c.certificate_problem
            if problem is not None and not self._dialog_open and c.state is ClientState.OFFLINE:
                self.open_connect_dialog(certificate_heading(problem.code))

        QTimer.singleShot(0, ask)  # after the client finished reporting the failure

    def _about(self) -> None:
        show_about(self, "qtchat")

    # ------------------------------------------------------------ conversations

    def _add_view(self, conv: Conversation) -> None:
        view = ChatView()
        view.set_model(conv.log)
        view.setAccessibleName(f"Messages in {conv.title}")
        view.near_top.connect(conv.load_older)
        view.near_bottom.connect(conv.load_newer)
        self.views[conv] = view
        self.stack.addWidget(view)
        conv.view_changed.connect(lambda keep_place: self._on_view_changed(conv, keep_place))
        conv.focus_requested.connect(view.reveal)
        conv.changed.connect(lambda: self._on_conversation_changed(conv))
        conv.users.count_changed.connect(lambda n: self._show_user_count(conv))

    def _remove_view(self, conv: Conversation) -> None:
        view = self.views.pop(conv, None)
        self._drafts.pop(conv, None)
        if view is not None:
            self.stack.removeWidget(view)
            view.deleteLater()

    def _on_activated(self, conv: Conversation) -> None:
        previous = self.stack.currentWidget()
        for old, view in self.views.items():  # the draft stays with the conversation it was typed in
            if view is previous and old is not conv:
                self._drafts[old] = self.input.toPlainText()
        self.stack.setCurrentWidget(self.views[conv])
        self.input.setPlainText(self._drafts.pop(conv, ""))
        self.input.moveCursor(QTextCursor.MoveOperation.End)
        self.input.complete_names = conv.users.completions
        self.input.setPlaceholderText(f"Message {conv.title}")
        self.user_proxy.setSourceModel(conv.users)
        self.sidebar.select(conv)
        self.context_bar.setVisible(conv.context is not None)
        self.search_panel.set_active_room(conv.name if conv.is_room else None)
        self.leave_action.setText("&Leave this room" if conv.is_room else "&Close this conversation")
        self.leave_action.setEnabled(not conv.is_lobby)
        self._on_conversation_changed(conv)
        self._show_user_count(conv)
        self._update_title()

    def _on_view_changed(self, conv: Conversation, keep_place: bool) -> None:
        view = self.views.get(conv)
        if view is None:
            return
        view.follow = conv.context is None
        view.set_model(conv.shown, keep_place)
        if conv is self.workspace.active:
            self.context_bar.setVisible(conv.context is not None)

    def _on_conversation_changed(self, conv: Conversation) -> None:
        if conv is self.workspace.active:
            self.topic_label.set_full_text(f"{conv.title} \N{EM DASH} {conv.topic}" if conv.topic else conv.title)

    def _show_user_count(self, conv: Conversation) -> None:
        if conv is self.workspace.active:
            self.users_label.setText(f"Users \N{EM DASH} {conv.users.rowCount()}" if conv.is_room else "People")

    def _on_sidebar_current(self, current: QModelIndex, previous: QModelIndex) -> None:
        conv = self.sidebar.conversation_at(current.row())
        if conv is not None and conv is not self.workspace.active:
            self.workspace.activate(conv)
            self.input.setFocus()

    def _step(self, delta: int) -> None:
        items = self.workspace.model.items
        row = (items.index(self.workspace.active) + delta) % len(items)
        self.workspace.activate(items[row])

    def _sidebar_menu(self, pos: QPoint) -> None:
        conv = self.sidebar.conversation_at(self.sidebar.indexAt(pos).row())
        if conv is None:
            return
        menu = QMenu(self)
        if not conv.is_lobby:
            leave = menu.addAction("Leave room" if conv.is_room else "Close conversation")
            leave.triggered.connect(lambda: self.workspace.close(conv))
        read = menu.addAction("Mark as read")
        read.setEnabled(conv.unread > 0)
        read.triggered.connect(conv.mark_read)
        menu.exec(self.sidebar.viewport().mapToGlobal(pos))

    def _operator_action(self, what: str, name: str) -> None:
        reason, ok = QInputDialog.getText(self, f"{what.title()} {name}", literal_html(f"Why {what} {name}? (they are told)"))
        if not ok:
            return
        try:
            if what == "kick":
                self.client.kick(name, reason.strip())
            else:
                self.client.ban(name, 24 * 60, reason.strip())
        except ValueError as exc:
            self.workspace.active.error(f"Not done: {exc}")

    def _save_rooms(self, names: list[str]) -> None:
        c = self.client
        if c.host:
            self.settings.set_rooms(c.host, c.port, names)

    def _restore_rooms(self) -> None:
        """The rooms of the last session on this server are joined again at login."""
        c = self.client
        if self._rooms_restored_for == (c.host, c.port, c.user):
            return
        self._rooms_restored_for = (c.host, c.port, c.user)
        for name in self.settings.rooms(c.host, c.port):
            try:
                c.join_room(name)
            except ValueError:
                continue  # a name this version would not take: forget it

    def _user_at(self, index: QModelIndex) -> str:
        name = self.user_proxy.data(index)
        return name if isinstance(name, str) else ""

    def _message_user(self, index: QModelIndex) -> None:
        name = self._user_at(index)
        if name and name != self.client.me:
            self.workspace.open_private(name)
            self.input.setFocus()

    def _mention_user(self, index: QModelIndex) -> None:
        name = self._user_at(index)
        if name:
            self.input.insertPlainText(f"{name}: " if not self.input.toPlainText() else f"{name} ")
            self.input.setFocus()

    def _user_menu(self, pos: QPoint) -> None:
        index = self.user_list.indexAt(pos)
        name = self._user_at(index)
        if not name:
            return
        menu = QMenu(self)
        if name != self.client.me:
            private = menu.addAction("Message privately")
            private.triggered.connect(lambda: self._message_user(index))
        mention = menu.addAction("Mention")
        mention.triggered.connect(lambda: self._mention_user(index))
        if self.client.operator and name != self.client.me:
            menu.addSeparator()
            kick = menu.addAction("Kick\N{HORIZONTAL ELLIPSIS}")
            kick.triggered.connect(lambda: self._operator_action("kick", name))
            ban = menu.addAction("Ban for a day\N{HORIZONTAL ELLIPSIS}")
            ban.triggered.connect(lambda: self._operator_action("ban", name))
        menu.exec(self.user_list.viewport().mapToGlobal(pos))

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
        self._update_account_actions()
        self.user_list.setEnabled(s is ClientState.ONLINE)  # a list from before the loss is not who is here
        if s is ClientState.CONNECTING:
            self._restore_rooms()
        if s is not ClientState.ONLINE:
            self.latency_label.setText("")
        self._show_tls()
        if s is not ClientState.WAITING:
            self._countdown.stop()
        self._show_server()

    def _show_tls(self) -> None:
        c = self.client
        on = c.state is ClientState.ONLINE and c.is_encrypted
        self.tls_label.setText("\N{LOCK} TLS" if on else "")
        self.tls_label.setToolTip(literal_html(c.tls_summary()) if on else "")

    def _on_logged_in(self, welcome: object) -> None:
        self._show_tls()
        self._show_server()
        self._update_title()

    def _on_login_failed(self, code: str, reason: Reason) -> None:
        if self.workspace.logins:  # a refused first login is the connect dialog's to show
            self.workspace.tell_all(reason_text(reason), error=True)

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
        self.workspace.submit(text)

    # ------------------------------------------------------------ notifications

    def _on_mentioned(self, conv: Conversation, line: ChatLine) -> None:
        if self.isActiveWindow():
            return  # the sidebar's badge shows it
        QApplication.alert(self)
        if self.tray is not None and QSystemTrayIcon.supportsMessages():
            title = f"{line.sender} (private)" if not conv.is_room else f"{line.sender} in {conv.title}"
            # notification daemons read a little HTML in these strings: escape it
            self.tray.showMessage(html.escape(title), html.escape(line.text[:200]),
                                  QSystemTrayIcon.MessageIcon.Information, 8000)

    def _update_title(self) -> None:
        me = self.client.me or self.client.user
        base = f"{self.workspace.active.title} \N{EM DASH} qtchat"
        if me:
            base += f" ({me})"
        unread = self.workspace.total_unread
        self.setWindowTitle(f"({unread}) {base}" if unread else base)

    def _raise(self) -> None:
        self.showNormal()
        self.raise_()
        self.activateWindow()

    def event(self, e: QEvent) -> bool:
        if e.type() == QEvent.Type.WindowActivate:
            self.workspace.set_looking(True)
        elif e.type() == QEvent.Type.WindowDeactivate:
            self.workspace.set_looking(False)
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
