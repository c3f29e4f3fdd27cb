"""``qtchat-server --admin``: the server's admin window, over the same ChatServer core as headless."""

from __future__ import annotations

import logging
import sys
import time
from collections import deque
from concurrent.futures import Future
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPointF,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
    SignalInstance,
)
from PySide6.QtGui import QCloseEvent, QPainter, QPainterPath, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from qtchat import __version__
from qtchat.client.models import literal_html
from qtchat.server import ChatServer, Operator, ServerConfig, UserSnapshot
from qtchat.server.backend import then
from qtchat.server.operator import sentence
from qtchat.sysutil import QuitSignals
from qtchat.ui.about import show_about
from qtchat.ui.bidi import IsolatedNames, isolate, mark_overrides

Index = QModelIndex | QPersistentModelIndex
SortRole = int(Qt.ItemDataRole.UserRole) + 1
COLUMNS = ("Name", "Address", "Connected since", "Idle", "Messages", "Bytes in", "Bytes out", "Muted")
CLUSTER_COLUMNS = ("Name", "Node", *COLUMNS[1:])  # a node of a cluster: each user's node too
LIVE = ("Idle", "Messages", "Bytes in", "Bytes out", "Muted")  # the columns that change while a row lasts
WIDTHS = {"Node": 110, "Address": 160, "Connected since": 130, "Idle": 60, "Messages": 80, "Bytes in": 80,
          "Bytes out": 80, "Muted": 60}


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


class UsersTableModel(QAbstractTableModel):
    """Connected users, as immutable snapshots from the operator facade, refreshed in batches.

    Joins and leaves (the core's signals) ask for a refresh at most four times a second (one
    insert for all joins, a reset when many leave at once), and the live columns (idle,
    counters) refresh once a second with one dataChanged; so thousands of clients connecting
    at once cost the view a few updates. Rows keep their order; a row is a connection
    (``UserSnapshot.id``), so a name used again by someone else is another row.

    On a node of a cluster the other nodes' users are rows too, with a Node column (``columns``); their
    comings and goings show at the next refresh (within a second). Only their node knows their idle time
    and counters: those cells are empty.
    """

    def __init__(self, operator: Operator, user_joined: SignalInstance, user_left: SignalInstance,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.operator = operator
        self.columns = CLUSTER_COLUMNS if operator.remote.clustered else COLUMNS
        self.rows: list[UserSnapshot] = operator.users()  # who is here already
        user_joined.connect(self._changed)
        user_left.connect(self._changed)
        self._apply_timer = QTimer(self)
        self._apply_timer.setSingleShot(True)
        self._apply_timer.setInterval(250)
        self._apply_timer.timeout.connect(self.apply)
        self._refresh = QTimer(self)
        self._refresh.timeout.connect(self.apply)
        self._refresh.start(1000)

    def _changed(self, name: str, detail: str) -> None:
        if not self._apply_timer.isActive():
            self._apply_timer.start()

    def apply(self) -> None:
        """Bring the rows up to date now (done automatically)."""
        now = {u.id: u for u in self.operator.users()}
        gone = [r for r, u in enumerate(self.rows) if u.id not in now]
        if len(gone) > 50:
            self.beginResetModel()
            self.rows = [u for u in self.rows if u.id in now]
            self.endResetModel()
        else:
            for row in reversed(gone):
                self.beginRemoveRows(QModelIndex(), row, row)
                del self.rows[row]
                self.endRemoveRows()
        self.rows = [now[u.id] for u in self.rows]
        present = {u.id for u in self.rows}
        new = [u for uid, u in now.items() if uid not in present]
        if self.rows:  # a row's name, address and start never change: the live columns only
            self.dataChanged.emit(self.index(0, self.columns.index(LIVE[0])),
                                  self.index(len(self.rows) - 1, len(self.columns) - 1))
        if new:
            first = len(self.rows)
            self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
            self.rows.extend(new)
            self.endInsertRows()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.columns[section]
        return None

    def user(self, row: int) -> UserSnapshot:
        return self.rows[row]

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.rows):
            return None
        column = self.columns[index.column()]
        if role == Qt.ItemDataRole.TextAlignmentRole and column in LIVE[:-1]:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role not in (Qt.ItemDataRole.DisplayRole, SortRole):
            return None
        return _cell(self.rows[index.row()], column, role == SortRole)


def _cell(u: UserSnapshot, column: str, sort: bool) -> Any:
    """What a column shows of a user (``sort``: the value to sort by)."""
    if column == "Name":
        return u.name.casefold() if sort else u.name
    if column == "Node":
        return u.node if u.node or sort else "this one"
    if column == "Address":
        return u.peer
    if column == "Connected since":
        if sort:
            return u.since
        today = time.strftime("%Y-%m-%d") == time.strftime("%Y-%m-%d", time.localtime(u.since))
        return time.strftime("%H:%M:%S" if today else "%Y-%m-%d %H:%M", time.localtime(u.since))
    if column == "Muted":
        return int(u.muted) if sort else ("muted" if u.muted else "")
    return _figure(u, column, sort)


def _figure(u: UserSnapshot, column: str, sort: bool) -> Any:
    """Idle time and counters (known to a user's own node only: empty for users of other nodes)."""
    if u.node:
        return -1 if sort else ""
    if column == "Idle":
        return u.idle_s if sort else (f"{u.idle_s:.0f} s" if u.idle_s < 120 else f"{u.idle_s / 60:.0f} min")
    if column == "Messages":
        return u.messages
    n = u.bytes_in if column == "Bytes in" else u.bytes_out
    return n if sort else human_bytes(n)


def _nodes(count: int) -> str:
    return f"{count} other node" if count == 1 else f"{count} other nodes"


class RateChart(QWidget):
    """Messages per second over the last minutes, as a line."""

    SAMPLES = 300

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.samples: deque[float] = deque([0.0] * self.SAMPLES, maxlen=self.SAMPLES)
        self.setMinimumSize(240, 56)
        self.setToolTip("Messages per second, last 5 minutes")

    def add(self, value: float) -> None:
        self.samples.append(value)
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        rect = self.rect().adjusted(1, 1, -1, -1)
        p.fillRect(rect, pal.color(QPalette.ColorRole.Base))
        p.setPen(QPen(pal.color(QPalette.ColorRole.Mid)))
        p.drawRect(rect)
        top = max(1.0, *self.samples)
        w, h = rect.width(), rect.height() - 14
        path = QPainterPath()
        for i, v in enumerate(self.samples):
            pt = QPointF(rect.left() + i * w / (self.SAMPLES - 1), rect.bottom() - 2 - v / top * (h - 4))
            if i == 0:
                path.moveTo(pt)
            else:
                path.lineTo(pt)
        p.setPen(QPen(pal.color(QPalette.ColorRole.Highlight), 1.5))
        p.drawPath(path)
        p.setPen(pal.color(QPalette.ColorRole.Text))
        p.drawText(rect.adjusted(4, 1, -4, 0), int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop),
                   f"msgs/s, 5 min (peak {top:.0f})")
        p.end()


class LogBridge(QObject):
    """A logging handler's records, handed to the window in batches (plain text only).

    Signals:
        records(list): [(levelno, line), ...] since the last batch.
    """

    records = Signal(list)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pending: list[tuple[int, str]] = []
        self._fmt = logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S")
        bridge = self

        class Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                bridge._pending.append((record.levelno, bridge._fmt.format(record)))

        self.handler = Handler()
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._flush)
        self._timer.start(200)

    def _flush(self) -> None:
        if self._pending:
            batch, self._pending = self._pending, []
            self.records.emit(batch)


class BanDialog(QDialog):
    DURATIONS = (("10 minutes", 600), ("1 hour", 3600), ("1 day", 86400), ("1 week", 604800), ("for good", None))

    def __init__(self, name: str, address: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Ban {isolate(name)}")
        self.by_name = QCheckBox(f"the name {isolate(name)}")
        self.by_name.setChecked(True)
        self.by_address = QCheckBox(f"the address {address}")
        self.duration = QComboBox()
        for label, _ in self.DURATIONS:
            self.duration.addItem(label)
        self.duration.setCurrentIndex(2)
        self.reason = QLineEdit()
        self.reason.setPlaceholderText("shown to the user")
        form = QFormLayout(self)
        form.addRow("Ban:", self.by_name)
        form.addRow("", self.by_address)
        form.addRow("For:", self.duration)
        form.addRow("Reason:", self.reason)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Ban")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    @property
    def seconds(self) -> int | None:
        return self.DURATIONS[self.duration.currentIndex()][1]


class AdminWindow(QMainWindow):
    """Connected users with actions, server-wide actions, live figures and the log."""

    def __init__(self, server: ChatServer, confirm: bool = True) -> None:
        super().__init__()
        self.server = server
        self.confirm = confirm  # tests turn the confirmation dialogs off
        self._closing = False
        node = f", node {server.cluster.node}" if server.cluster.node else ""
        self.setWindowTitle(f"qtchat-server {__version__} \N{EM DASH} port {server.port}{node}")

        # header: figures and chart
        self.clients_label, self.rate_label, self.bytes_label, self.uptime_label = (QLabel() for _ in range(4))
        header = QHBoxLayout()
        header.setSpacing(24)
        for label in (self.clients_label, self.rate_label, self.bytes_label, self.uptime_label):
            label.setTextFormat(Qt.TextFormat.PlainText)
            header.addWidget(label)
        header.addStretch(1)
        self.chart = RateChart()
        header.addWidget(self.chart)

        # users
        self.operator = server.operator
        self.model = UsersTableModel(server.operator, server.user_joined, server.user_left, self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SortRole)
        self.proxy.setFilterKeyColumn(-1)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter by name or address")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self.proxy.setFilterFixedString)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setItemDelegateForColumn(0, IsolatedNames(self.table))  # the names (and the ban and kick dialogs)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(self.model.columns.index("Connected since"), Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 8)
        self.table.setWordWrap(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col, column in enumerate(self.model.columns):
            if col:
                self.table.setColumnWidth(col, WIDTHS[column])
        self.kick_button = QPushButton("&Kick\N{HORIZONTAL ELLIPSIS}")
        self.ban_button = QPushButton("&Ban\N{HORIZONTAL ELLIPSIS}")
        self.mute_button = QPushButton("&Mute")
        self.kick_button.clicked.connect(lambda: self.kick_selected())  # noqa: PLW0108 (not clicked(checked) as the reason)
        self.ban_button.clicked.connect(self.ban_selected)
        self.mute_button.clicked.connect(self.toggle_mute_selected)
        self.broadcast_button = QPushButton("B&roadcast\N{HORIZONTAL ELLIPSIS}")
        self.broadcast_button.clicked.connect(lambda: self.ask_broadcast())  # noqa: PLW0108 (likewise)
        self.accept_button = QPushButton("&Stop accepting")
        self.accept_button.setCheckable(True)
        self.accept_button.toggled.connect(self._on_accept_toggled)
        self.limit = QSpinBox()
        self.limit.setRange(1, 1_000_000)
        self.limit.setValue(server.config.max_clients)
        self.limit.setPrefix("limit ")
        self.limit.setKeyboardTracking(False)
        self.limit.valueChanged.connect(self._on_limit)
        actions = QHBoxLayout()
        for w in (self.kick_button, self.ban_button, self.mute_button):
            actions.addWidget(w)
        actions.addStretch(1)
        for w2 in (self.broadcast_button, self.accept_button, self.limit):
            actions.addWidget(w2)
        users = QWidget()
        users_layout = QVBoxLayout(users)
        users_layout.setContentsMargins(0, 0, 0, 0)
        users_layout.addWidget(self.filter)
        users_layout.addWidget(self.table, 1)
        users_layout.addLayout(actions)

        # log
        self.level = QComboBox()
        for name in ("Debug", "Info", "Warning", "Error"):
            self.level.addItem(name, getattr(logging, name.upper()))
        self.level.setCurrentIndex(1)
        self.level.currentIndexChanged.connect(self._rebuild_log)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(5000)
        self.log_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self._records: deque[tuple[int, str]] = deque(maxlen=5000)
        log_box = QWidget()
        log_layout = QVBoxLayout(log_box)
        log_layout.setContentsMargins(0, 0, 0, 0)
        log_top = QHBoxLayout()
        log_top.addWidget(QLabel("Log"))
        log_top.addStretch(1)
        log_top.addWidget(QLabel("Level:"))
        log_top.addWidget(self.level)
        log_layout.addLayout(log_top)
        log_layout.addWidget(self.log_view, 1)
        self.bridge = LogBridge(self)
        self.bridge.records.connect(self._on_records)
        logging.getLogger("qtchat").addHandler(self.bridge.handler)
        if logging.getLogger("qtchat").getEffectiveLevel() > logging.DEBUG:
            logging.getLogger("qtchat").setLevel(logging.DEBUG)
            for h in logging.getLogger().handlers:  # stderr keeps its own level
                if h.level == logging.NOTSET:
                    h.setLevel(logging.INFO)

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(users)
        splitter.addWidget(log_box)
        splitter.setSizes([500, 140])
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.addLayout(header)
        layout.addWidget(splitter, 1)
        self.setCentralWidget(central)
        self.resize(1000, 700)
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)
        self.model.modelReset.connect(self._update_buttons)

        snap = self.operator.snapshot()
        self._last = (time.monotonic(), snap.messages, snap.bytes_in, snap.bytes_out)
        self._stats_timer = QTimer(self)
        self._stats_timer.timeout.connect(self._update_stats)
        self._stats_timer.start(1000)
        self._update_stats()
        self._update_buttons()
        server.stopped.connect(self._on_stopped)
        about = self.menuBar().addMenu("&Help").addAction("&About qtchat-server")
        about.triggered.connect(self._about)

    def _about(self) -> None:
        show_about(self, "qtchat-server")

    # ------------------------------------------------------------ figures

    def _update_stats(self) -> None:
        s = self.operator.snapshot()
        now = time.monotonic()
        t0, m0, i0, o0 = self._last
        dt = max(1e-3, now - t0)
        rate = (s.messages - m0) / dt
        self._last = (now, s.messages, s.bytes_in, s.bytes_out)
        self.chart.add(rate)
        up = int(time.time() - s.started)
        others = f" here, {s.remote_users} on {_nodes(s.nodes - 1)}" if s.nodes > 1 else ""
        self.clients_label.setText(f"Clients: {s.users} / {s.max_clients}{others}")
        self._show_settings(s.accepting, s.max_clients)
        self.rate_label.setText(f"Messages/s: {rate:.0f}")
        self.bytes_label.setText(
            f"In: {human_bytes((s.bytes_in - i0) / dt)}/s   Out: {human_bytes((s.bytes_out - o0) / dt)}/s")
        self.uptime_label.setText(f"Up: {up // 3600}:{up // 60 % 60:02d}:{up % 60:02d}")

    def _show_settings(self, accepting: bool, limit: int) -> None:
        """Accepting and the limit as they are: another node's operator may have changed them."""
        if self.accept_button.isChecked() == accepting:
            self.accept_button.blockSignals(True)
            self.accept_button.setChecked(not accepting)
            self.accept_button.setText("&Start accepting" if not accepting else "&Stop accepting")
            self.accept_button.blockSignals(False)
        if self.limit.value() != limit and not self.limit.hasFocus():
            self.limit.blockSignals(True)
            self.limit.setValue(limit)
            self.limit.blockSignals(False)

    # ------------------------------------------------------------ log

    def _on_records(self, batch: list[tuple[int, str]]) -> None:
        self._records.extend(batch)
        level = self.level.currentData()
        for levelno, line in batch:
            if levelno >= level:
                self.log_view.appendPlainText(mark_overrides(line))  # a line is a paragraph: overrides shown

    def _rebuild_log(self) -> None:
        level = self.level.currentData()
        self.log_view.setPlainText(mark_overrides("\n".join(line for levelno, line in self._records if levelno >= level)))
        self.log_view.moveCursor(self.log_view.textCursor().MoveOperation.End)

    # ------------------------------------------------------------ actions

    def selected(self) -> UserSnapshot | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        row = self.proxy.mapToSource(rows[0]).row()
        return self.model.user(row) if 0 <= row < len(self.model.rows) else None

    def _update_buttons(self) -> None:
        user = self.selected()
        for b in (self.kick_button, self.ban_button, self.mute_button):
            b.setEnabled(user is not None)
        if user is not None:
            self.mute_button.setText("Un&mute" if user.muted else "&Mute")

    def _report(self, outcome: Future[str]) -> None:
        """Show the operator's sentence of an action (once it is done: at once on one machine)."""
        def show(message: str) -> None:
            self.statusBar().showMessage(message, 8000)
            self.model.apply()
            self._update_buttons()

        then(outcome, show, lambda exc: show(sentence(exc)))

    def kick_selected(self, reason: str | None = None) -> None:
        user = self.selected()
        if user is None:
            return
        if reason is None:
            text, ok = QInputDialog.getText(self, "Kick", literal_html(f"Kick {isolate(user.name)}? Reason (shown to them):"))
            if not ok:
                return
            reason = text
        self._report(self.operator.kick(user.id, reason))

    def ban_selected(self) -> None:
        user = self.selected()
        if user is None:
            return
        dialog = BanDialog(user.name, user.address, self)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        name = user.name if dialog.by_name.isChecked() else None
        address = user.address if dialog.by_address.isChecked() else None
        self._report(self.operator.ban(name, address, dialog.seconds, dialog.reason.text()))

    def toggle_mute_selected(self) -> None:
        user = self.selected()
        if user is None:
            return
        on = not user.muted
        if self.confirm and QMessageBox.question(self, "Mute" if on else "Unmute",
                                                 literal_html(f"{'Mute' if on else 'Unmute'} {isolate(user.name)}?")) \
                != QMessageBox.StandardButton.Yes:
            return
        self._report(self.operator.mute(user.id, on))

    def ask_broadcast(self, text: str | None = None) -> None:
        if text is None:
            value, ok = QInputDialog.getMultiLineText(self, "Broadcast", "Notice to every connected user"
                                                      + (" of every node:" if self.model.columns is CLUSTER_COLUMNS else ":"))
            if not ok or not value.strip():
                return
            text = value
        self._report(self.operator.broadcast(text))

    def _on_accept_toggled(self, stopped: bool) -> None:
        self.accept_button.setText("&Start accepting" if stopped else "&Stop accepting")
        self._report(self.operator.set_accepting(not stopped))

    def _on_limit(self, value: int) -> None:
        self._report(self.operator.set_max_clients(value))

    # ------------------------------------------------------------ closing

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._closing:
            event.accept()
            return
        count = self.operator.snapshot().users
        if self.confirm and QMessageBox.question(
            self, "Stop the server?",
            f"Closing this window stops the server; {count} user(s) are connected and will be told 'bye'.",
        ) != QMessageBox.StandardButton.Yes:
            event.ignore()
            return
        self.stop()
        event.ignore()  # closes when the server has stopped

    def stop(self) -> None:
        self._closing = True
        logging.getLogger("qtchat").removeHandler(self.bridge.handler)
        self.server.shutdown("server shutting down")

    def _on_stopped(self) -> None:
        self._closing = True
        self.close()


def run_admin_window(config: ServerConfig, admin_channel: bool = True) -> int:
    from qtchat.server.admin import AdminChannel, channel_name
    from qtchat.server.startup import open_server
    from qtchat.ui.icon import app_icon

    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("qtchat-server")
    app.setWindowIcon(app_icon())
    windows: list[AdminWindow] = []

    def ready(server: ChatServer) -> None:
        if admin_channel:
            try:
                AdminChannel(server, channel_name(server.port)).listen()
            except OSError as exc:
                failed(str(exc))
                return
        window = AdminWindow(server)
        windows.append(window)
        window.show()
        server.stopped.connect(app.quit)

    def failed(why: str) -> None:
        QMessageBox.critical(None, "qtchat-server", why)
        app.exit(2)

    def on_signal(signum: int) -> None:
        if windows:
            windows[0].stop()  # from a terminal: no question asked
        else:
            app.exit(1)

    signals = QuitSignals(on_signal)
    QTimer.singleShot(0, lambda: open_server(config, ready, failed))
    code = app.exec()
    del signals
    return int(code)
