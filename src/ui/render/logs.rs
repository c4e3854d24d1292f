//! The log pane (`l`): tui-logger's smart widget over the collector's and
//! writer's `tracing` events; focused with Tab, its keys come from the
//! binding table's `Logs` context.

use ratatui::layout::Rect;
use ratatui::Frame;
use tui_logger::{TuiLoggerLevelOutput, TuiLoggerSmartWidget};

use crate::ui::app::App;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    let border = if app.logs_focused {
        t.selected_border()
    } else {
        t.label()
    };
    let widget = TuiLoggerSmartWidget::default()
        .title_log(if app.logs_focused {
            " Logs (Tab: back, ?: keys) "
        } else {
            " Logs (l hide, Tab focus) "
        })
        .title_target(" Targets ")
        .border_style(border)
        .style_error(t.bad())
        .style_warn(t.warn())
        .style_info(t.base())
        .style_debug(t.dim())
        .style_trace(t.dim())
        .highlight_style(t.highlight())
        .output_separator(' ')
        .output_timestamp(Some("%H:%M:%S".into()))
        .output_level(Some(TuiLoggerLevelOutput::Abbreviated))
        .output_target(true)
        .output_file(false)
        .output_line(false)
        .state(&app.log_state);
    frame.render_widget(widget, area);
}
