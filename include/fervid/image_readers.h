// Dataset readers that need OpenCV: image folders, CK+ (CK+48 and the original distribution),
// and folders of uncropped photos (design.md section 5). Each fills a fervid::Dataset of
// uint8 gray size x size images, prepared by preprocess_face() (include/fervid/vision.h).
//
// Errors follow readers.h: a bad entry (unreadable image, no face, unparsable label file) is
// reported with its path and field; by default it is skipped and counted in the ReadReport,
// with `strict` it is a DataError. Structural problems (missing root, empty folder, a class
// folder whose name is not one of our 7 expressions) are always a DataError naming the folder.
// Files and folders are visited in byte order of their names, so a read is deterministic.
#pragma once

#include <optional>
#include <string>

#include "fervid/dataset.h"
#include "fervid/image_io.h"

namespace fervid {

class FacePipeline;

struct ImageFolderOptions {
  int size = 48;  // output side; read_photo_folder and read_ckplus with a pipeline use the pipeline's
  bool strict = false;
  // CK+'s "contempt" has no index among our 7 classes. true: its images are dropped, each
  // counted in ReadReport::skipped with field "class" (the paper's protocol). false: a
  // contempt folder or label is a DataError, like any unknown class.
  bool drop_contempt = true;
  // For <root>/<class>/* layouts: the split every image gets (required there). For
  // <root>/<split>/<class>/* layouts: read only that split (nullopt: all split folders).
  std::optional<Split> split;
  ImageReadOptions image;  // pixel and file-size limits; color is ignored (read as BGR, then preprocess_face)
};

// Image folders, either <root>/<split>/<class>/<image> (split folders train / val / valid /
// validation / test / Training / PublicTest / PrivateTest, see parse_split) or
// <root>/<class>/<image> with options.split. A root is the split layout when any of its
// folders is named as a split; then every folder must be. Class folders are mapped with
// expression_index() (FER2013 and CK+ spellings). Images (has_image_extension(); other files
// and names starting with '.' are ignored) are taken as face crops: converted to gray and
// bilinear-resized to size x size whatever their aspect ratio (preprocess_face on the whole
// image, margin 0). Origins are the image paths; subjects -1.
Dataset read_image_folder(const std::string& root, const ImageFolderOptions& options = {},
                          ReadReport* report = nullptr);

// Uncropped photos (JAFFE-style) in the same folder layouts: every image goes through
// `faces` (detection; the LARGEST face is kept; alignment if the pipeline aligns) and its
// preprocessing. An image without a face is a counted skip (field "face") naming the file.
// The dataset's size is faces.options().preprocess.size.
Dataset read_photo_folder(const std::string& root, const FacePipeline& faces,
                          const ImageFolderOptions& options = {}, ReadReport* report = nullptr);

// CK+48: <root>/<class>/S###_###_########.png (root is the CK+48 folder). Images are taken as
// crops (as read_image_folder); Dataset::subjects gets the number after 'S'; a file whose
// name does not follow the pattern is a bad entry (field "name"). Split: options.split or
// kTraining (protocols split by subject later).
Dataset read_ckplus48(const std::string& root, const ImageFolderOptions& options = {},
                      ReadReport* report = nullptr);

struct CkPlusOptions {
  ImageFolderOptions folder;         // size, strict, drop_contempt, split (default kTraining), image
  int frames_per_sequence = 3;       // the last N frames of each labelled sequence (the paper's 3)
  bool first_frame_neutral = false;  // also the first frame of each labelled sequence, as neutral
};

// The original CK+ distribution: <root>/cohn-kanade-images/S###/###/S###_###_########.png and
// <root>/Emotion/S###/###/S###_###_########_emotion.txt holding one float code (0 neutral,
// 1 anger, 2 contempt, 3 disgust, 4 fear, 5 happy, 6 sadness, 7 surprise). Each label file
// labels its sequence; its last frames_per_sequence frames (by file name) get that label.
// `faces`: detection (largest face) + preprocessing as everywhere else; nullptr takes the
// whole frame as the face (for pre-cropped copies). A frame without a face is a counted skip;
// a bad label file (not one number in 0..7, no frames) is a bad entry naming it (field
// "emotion"). Subjects from S###.
Dataset read_ckplus(const std::string& root, const FacePipeline* faces, const CkPlusOptions& options = {},
                    ReadReport* report = nullptr);

}  // namespace fervid
