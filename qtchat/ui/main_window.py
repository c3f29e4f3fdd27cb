"""The main window: conversations, the active one with its input, its people or a search's results,
the status bar, notifications. The user list is qtchat/ui/user_panel.py, the status bar status_bar.py."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QModelIndex, QObject, QPoint, Qt, QTimer
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QGuiApplication,
    QIcon,
    QKeyEvent,
    QKeySequence,
    QPalette,
    QTextCursor,
)
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from qtchat.client import ChatClient, ClientState, Conversation, Reason, Workspace
from qtchat.client.settings import ClientSettings
from qtchat.protocol import Message
from qtchat.server import ChatServer

from .about import show_about
from .account import ask_operator_action, ask_to_register
from .away import AwayControl, header_text
from .bidi import isolate
from .chat_view import ChatView
from .editing import MessageEditing
from .elided_label import ElidedLabel
from .message_input import MessageInput
from .notifications import Notifier
from .search_panel import SearchPanel
from .sidebar import Sidebar
from .status_bar import ConnectionStatus
from .typing_line import with_typing_line
from .user_panel import UserPanel
from .view_menu import add_view_menu
from .wording import certificate_heading, connection_lost_text, reason_text

SEARCH_WIDTH = 320  # the side panel while it shows search results


class MainWindow(QMainWindow):
    """The client's window: conversations on the left, the active one in the middle, its people (or the
    results of a search) on the right, the connection in the status bar. Built in steps: the state, the
    widgets, the status bar, the actions and menus, the tray icon, the signals, and the first look."""

    def __init__(self, client: ChatClient, settings: ClientSettings, icon: QIcon | None = None) -> None:
        super().__init__()
        self._init_state(client, settings)
        self.setWindowTitle("qtchat")
        if icon is not None:
            self.setWindowIcon(icon)
        self._add_widgets()
        self._init_status_bar()
        self._init_actions()
        self.notifier = Notifier(self, icon)
        self.tray = self.notifier.tray
        self._connect_signals()
        self._show_first()

    def _init_state(self, client: ChatClient, settings: ClientSettings) -> None:
        self.client = client
        self.settings = settings
        self.server: ChatServer | None = None
        self.workspace: Workspace = Workspace(client, self)
        self.views: dict[Conversation, ChatView] = {}
        self._drafts: dict[Conversation, str] = {}
        self._rooms_restored_for: tuple[str, int, str] | None = None
        self._quitting = False
        self._dialog_open = False

    # ------------------------------------------------------------ building it

    def _add_widgets(self) -> None:
        left = self._conversations_pane()
        chat = self._chat_pane()
        self._add_side_pane()
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(chat)
        self.splitter.addWidget(self.side_stack)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 0)
        self.splitter.setSizes([170, 620, 190])
        self.splitter.setCollapsible(1, False)  # the side lists may be dragged shut in a narrow window
        self.setCentralWidget(self.splitter)
        self.setTabOrder(self.input, self.stack)
        self.setTabOrder(self.stack, self.sidebar)
        self.setTabOrder(self.sidebar, self.user_filter)
        self.setTabOrder(self.user_filter, self.user_list)

    def _conversations_pane(self) -> QWidget:
        """Left: the conversations, and the button to join a room."""
        self.sidebar = Sidebar(self.workspace.model)
        self.sidebar.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        conversations_label = QLabel("Conversations")
        conversations_label.setContentsMargins(6, 4, 0, 0)
        self.join_button = QToolButton()
        self.join_button.setText("+")
        self.join_button.setToolTip("Join or create a room (Ctrl+J)")
        self.join_button.setAccessibleName("Join a room")
        self.join_button.setAutoRaise(True)
        header = QHBoxLayout()
        header.setContentsMargins(0, 0, 0, 0)
        header.addWidget(conversations_label, 1)
        header.addWidget(self.join_button)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addLayout(header)
        left_layout.addWidget(self.sidebar, 1)
        return left

    def _chat_pane(self) -> QWidget:
        """Middle: the active conversation's topic and the search field, its messages and the input."""
        self.topic_label = ElidedLabel()
        self.topic_label.setContentsMargins(6, 4, 6, 2)
        self.topic_label.setAccessibleName("Topic")
        self.search_field = QLineEdit()
        self.search_field.setPlaceholderText("Search messages (Ctrl+F)")
        self.search_field.setClearButtonEnabled(True)
        self.search_field.setAccessibleName("Search messages")
        self.search_field.setMinimumWidth(200)
        self.search_field.setMaximumWidth(260)
        self.search_field.installEventFilter(self)
        top_row = QHBoxLayout()
        top_row.setContentsMargins(0, 0, 4, 0)
        top_row.addWidget(self.topic_label, 1)
        top_row.addWidget(self.search_field)
        self._add_context_bar()
        self.stack = QStackedWidget()
        self.input = MessageInput()
        chat = QWidget()
        chat_layout = QVBoxLayout(chat)
        chat_layout.setContentsMargins(0, 0, 0, 0)
        chat_layout.setSpacing(4)
        chat_layout.addLayout(top_row)
        chat_layout.addWidget(self.context_bar)
        chat_layout.addWidget(self.stack, 1)
        self.editing = MessageEditing(self)  # edits of sent messages (editing.py): its line above the field
        chat_layout.addWidget(self.editing.banner)
        chat_layout.addWidget(with_typing_line(self.workspace, self.input))  # who is typing, above the input
        return chat

    def _add_context_bar(self) -> None:
        """Shown while a room is opened at a search result, older than its newest messages."""
        self.context_bar = QWidget()
        self.context_bar.setAutoFillBackground(True)
        self.context_bar.setBackgroundRole(QPalette.ColorRole.AlternateBase)
        self.context_label = QLabel("You are reading older messages, around a search result.")
        self.context_label.setTextFormat(Qt.TextFormat.PlainText)
        self.context_button = QPushButton("Jump to the newest ↓")
        self.context_button.setToolTip("Back to the newest messages (Ctrl+End)")
        bar_layout = QHBoxLayout(self.context_bar)
        bar_layout.setContentsMargins(8, 2, 4, 2)
        bar_layout.addWidget(self.context_label, 1)
        bar_layout.addWidget(self.context_button)
        self.context_bar.hide()

    def _add_side_pane(self) -> None:
        """Right: who is in the conversation, or the results of a search, in the same place."""
        self.user_panel = UserPanel(self.client)
        self.users_page = self.user_panel
        self.users_label, self.user_filter = self.user_panel.label, self.user_panel.filter
        self.user_proxy, self.user_list = self.user_panel.proxy, self.user_panel.list
        self.search_panel = SearchPanel(self.workspace.search)
        self.search_panel.set_hours(self.settings.hours)  # its times as the views write them
        self.side_stack = QStackedWidget()
        self.side_stack.addWidget(self.user_panel)
        self.side_stack.addWidget(self.search_panel)

    def _init_status_bar(self) -> None:
        self.status = ConnectionStatus(self.client, self.statusBar(), self)
        s = self.status
        self.state_label, self.server_label, self.latency_label = s.state_label, s.server_label, s.latency_label
        self.pending_label, self.tls_label = s.pending_label, s.tls_label

    def _connect_signals(self) -> None:
        self._connect_widgets()
        self._connect_client()
        self._connect_workspace()

    def _connect_widgets(self) -> None:
        self.sidebar.customContextMenuRequested.connect(self._sidebar_menu)
        self.sidebar.selectionModel().currentChanged.connect(self._on_sidebar_current)
        self.join_button.clicked.connect(self.open_room_dialog)
        self.search_field.returnPressed.connect(lambda: self.search(self.search_field.text()))
        self.context_button.clicked.connect(lambda: self.workspace.active.leave_context())  # noqa: PLW0108
        self.input.submitted.connect(self._on_submitted)
        self.user_panel.message_requested.connect(self._talk_to)
        self.user_panel.mention_requested.connect(self._mention)
        self.user_panel.operator_requested.connect(self._operator_action)
        self.search_panel.result_activated.connect(self._open_result)
        self.search_panel.closed.connect(self.close_search)

    def _connect_client(self) -> None:
        c = self.client
        c.state_changed.connect(self._on_state)
        c.logged_in.connect(self._on_logged_in)
        c.connection_lost.connect(lambda reason: self.workspace.tell_all(connection_lost_text(reason), error=True))
        c.login_failed.connect(self._on_login_failed)
        self.status.connect_client()
        c.closed.connect(self._on_client_closed)
        c.account_changed.connect(lambda registered, op: self._update_account_actions())
        c.password_changed.connect(lambda: self.workspace.lobby.notice("Your password was changed."))
        # a certificate problem on a reconnect: the connect dialog explains it and offers the way on
        c.certificate_unknown.connect(lambda *_: self._certificate_problem())
        c.certificate_changed.connect(lambda *_: self._certificate_problem())

    def _connect_workspace(self) -> None:
        ws = self.workspace
        ws.conversation_added.connect(self._add_view)
        ws.conversation_removed.connect(self._remove_view)
        ws.activated.connect(self._on_activated)
        ws.mentioned.connect(self.notifier.mentioned)
        ws.unread_changed.connect(lambda n: self._update_title())
        ws.rooms_changed.connect(self._save_rooms)

    def _show_first(self) -> None:
        ws = self.workspace
        ws.set_looking(False)  # until the window is shown and active
        ws.set_show_presence(self.settings.show_presence)
        for conv in ws.conversations:
            self._add_view(conv)
        self._on_activated(ws.active)
        self._on_state(self.client.state.value)
        self._restore()
        self.input.setFocus()

    @property
    def conversation(self) -> Conversation:
        """The conversation the user looks at."""
        return self.workspace.active

    @property
    def view(self) -> ChatView:
        return self.views[self.workspace.active]

    # ------------------------------------------------------------ actions and menus

    def _action(self, menu: QMenu, text: str, slot: Callable[[], object],
                shortcut: str | QKeySequence.StandardKey | None = None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(lambda: slot())  # noqa: PLW0108 (not with the bool triggered sends)
        menu.addAction(action)
        return action

    def _init_actions(self) -> None:
        chat = self.menuBar().addMenu("&Chat")
        add = self._action
        add(chat, "&Connect to\N{HORIZONTAL ELLIPSIS}", self.open_connect_dialog, "Ctrl+N")
        self.reconnect_action = add(chat, "&Reconnect now", self._reconnect, "Ctrl+R")
        chat.addSeparator()
        add(chat, "&Join a room\N{HORIZONTAL ELLIPSIS}", self.open_room_dialog, "Ctrl+J")
        self.leave_action = add(chat, "&Leave this room", lambda: self.workspace.close(self.workspace.active),
                                "Ctrl+W")
        self.register_action = add(chat, "Re&gister this name\N{HORIZONTAL ELLIPSIS}", self.register_name)
        self.password_action = add(chat, "Change &password\N{HORIZONTAL ELLIPSIS}", self.change_password)
        self.password_action.setEnabled(False)
        self.away = AwayControl(self, self.client, self.settings, chat)  # away by hand, and when idle (away.py)
        add(chat, "&Previous conversation", lambda: self._step(-1), "Alt+Up")
        add(chat, "Ne&xt conversation", lambda: self._step(1), "Alt+Down")
        add(chat, "&Search messages…", self._focus_search, QKeySequence.StandardKey.Find)
        add(chat, "Jump to the &newest messages", self._jump_to_newest, "Ctrl+End")
        chat.addSeparator()
        quit_action = add(chat, "&Quit", self.close, "Ctrl+Q")
        quit_action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        self.view_actions = add_view_menu(self)  # View: the preferences (view_menu.py)
        self.presence_action = self.view_actions["show_presence"]
        help_menu = self.menuBar().addMenu("&Help")
        add(help_menu, "&About qtchat", self._about)

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
        ask_to_register(self, self.client, self.workspace.lobby)

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
        elif c.state is ClientState.OFFLINE and c.addresses:
            c.connect_to(c.addresses_text, c.port, c.user, tls=c.tls)

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
        view = ChatView(hours=self.settings.hours)
        view.set_model(conv.log)
        view.setAccessibleName(f"Messages in {isolate(conv.title)}")
        view.near_top.connect(conv.load_older)
        view.near_bottom.connect(conv.load_newer)
        view.line_activated.connect(lambda line: line.kind == "more" and conv.load_missed())
        self.editing.attach(conv, view)
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
        self.editing.left()  # an edit of another conversation's message is given up, not kept as a draft
        previous = self.stack.currentWidget()
        for old, view in self.views.items():  # the draft stays with the conversation it was typed in
            if view is previous and old is not conv:
                self._drafts[old] = self.input.toPlainText()
        self.stack.setCurrentWidget(self.views[conv])
        self.input.setPlainText(self._drafts.pop(conv, ""))
        self.input.moveCursor(QTextCursor.MoveOperation.End)
        self.input.complete_names = conv.users.completions
        self.input.setPlaceholderText(f"Message {isolate(conv.title)}")
        self.user_panel.show_conversation(conv)
        self.sidebar.select(conv)
        self.context_bar.setVisible(conv.context is not None)
        self.search_panel.set_active_room(conv.name if conv.is_room else None)
        self.leave_action.setText("&Leave this room" if conv.is_room else "&Close this conversation")
        self.leave_action.setEnabled(not conv.is_lobby)
        self._on_conversation_changed(conv)
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
            self.topic_label.set_full_text(header_text(conv))  # a topic, or a private one's "away: ..."

    def _show_user_count(self, conv: Conversation) -> None:
        if conv is self.workspace.active:
            self.user_panel.show_count(conv)

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
        ask_operator_action(self, self.client, self.workspace.active, what, name)

    def _save_rooms(self, names: list[str]) -> None:
        c = self.client
        if c.addresses:  # kept under the server's first address: the same whichever node we are on
            self.settings.set_rooms(*c.server_address, names)

    def _restore_rooms(self) -> None:
        """The rooms of the last session on this server are joined again at login."""
        c = self.client
        host, port = c.server_address
        if self._rooms_restored_for == (host, port, c.user):
            return
        self._rooms_restored_for = (host, port, c.user)
        for name in self.settings.rooms(host, port):
            try:
                c.join_room(name)
            except ValueError:
                continue  # a name this version would not take: forget it

    def _message_user(self, index: QModelIndex) -> None:
        name = self.user_panel.user_at(index)
        if name and name != self.client.me:
            self._talk_to(name)

    def _talk_to(self, name: str) -> None:
        self.workspace.open_private(name)
        self.input.setFocus()

    def _mention(self, name: str) -> None:
        self.input.insertPlainText(f"{name}: " if not self.input.toPlainText() else f"{name} ")
        self.input.setFocus()

    # ------------------------------------------------------------ hosting

    def set_server(self, server: ChatServer | None) -> None:
        """Own a server hosted in this process; its address shows in the status bar."""
        self.server = server
        if server is not None:
            server.stopped.connect(self._show_server)
        self._show_server()

    def _show_server(self) -> None:
        self.status.show_server(self.server)

    # ------------------------------------------------------------ client events

    def _on_state(self, state: str) -> None:
        s = ClientState(state)
        self.reconnect_action.setEnabled(s is ClientState.WAITING or (s is ClientState.OFFLINE and bool(self.client.host)))
        self._update_account_actions()
        self.user_list.setEnabled(s is ClientState.ONLINE)  # a list from before the loss is not who is here
        if s is ClientState.CONNECTING:
            self._restore_rooms()
        self.status.show_state(s, self.server)

    def _on_logged_in(self, welcome: object) -> None:
        self.status.show_tls()
        self._show_server()
        self._update_title()

    def _on_login_failed(self, code: str, reason: Reason) -> None:
        if self.workspace.logins:  # a refused first login is the connect dialog's to show
            self.workspace.tell_all(reason_text(reason), error=True)

    def _on_submitted(self, text: str) -> None:
        if self.editing.submit(text):
            return
        self.view.scroll_to_bottom()
        self.workspace.submit(text)

    # ------------------------------------------------------------ the window

    def _update_title(self) -> None:
        me = self.client.me or self.client.user
        base = f"{isolate(self.workspace.active.title)} \N{EM DASH} qtchat"
        if me:
            base += f" ({isolate(me)})"
        unread = self.workspace.total_unread
        self.setWindowTitle(f"({unread}) {base}" if unread else base)

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
        self.notifier.hide()
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
