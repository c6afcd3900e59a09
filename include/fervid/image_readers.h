// Dataset readers that need OpenCV: image folders, CK+ (CK+48 and the original distribution),
// and folders of uncropped photos (design.md section 5). Each fills a fervid::Dataset of
// uint8 gray size x size images, prepared by preprocess_face() (include/fervid/vision.h).
//
// Errors follow readers.h: a bad entry (unreadable image, no face, unparsable label file, a
// flat folder's file name without a JAFFE code) is
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
  // CK+'s "contempt" has no index among our 7 classes. drop_contempt (default): its images
  // are dropped, each counted in ReadReport::skipped with field "class" (the paper's
  // protocol); otherwise a contempt folder or label is a DataError, like any unknown class.
  // keep_contempt (takes precedence): its images are kept unlabelled (label -1).
  bool drop_contempt = true;
  bool keep_contempt = false;
  // Folders without split folders (<root>/<class>/* and flat <root>/*): the split every image
  // gets (nullopt: Training, as CK+48's). With split folders: read only that split (nullopt:
  // every split folder).
  std::optional<Split> split;
  ImageReadOptions image;  // pixel and file-size limits; color is ignored (read as BGR, then preprocess_face)
};

// Image folders in one of three layouts, told apart by what the root holds:
//   <root>/<split>/<class>/<image>  any folder of the root is named as a split (train / val /
//                                   valid / validation / test / Training / PublicTest /
//                                   PrivateTest, see parse_split); then every folder must be.
//   <root>/<class>/<image>          folders, none named as a split: one split (options.split,
//                                   default Training).
//   <root>/<image>                  images at the top (JAFFE-style): the label is the JAFFE
//                                   code in the file name (see jaffe_label), the subject its
//                                   first dot-separated part; the split as above. Folders
//                                   next to the images are not read (ReadReport note "folder").
// A split folder may itself be flat (<root>/<split>/<image>). Class folders are mapped with
// expression_index() (FER2013 and CK+ spellings). Images (has_image_extension(); other files
// and names starting with '.' are ignored) are taken as face crops: converted to gray and
// bilinear-resized to size x size whatever their aspect ratio (preprocess_face on the whole
// image, margin 0). Origins are the image paths; subjects -1 (JAFFE: numbered by name).
Dataset read_image_folder(const std::string& root, const ImageFolderOptions& options = {},
                          ReadReport* report = nullptr);

// A JAFFE file name's label: "KA.AN1.39.tiff" -> angry. The second dot-separated part starts
// with the code AN angry, DI disgust, FE fear, HA happy, NE neutral, SA sad, SU surprise
// (any case) followed only by digits. nullopt when the name does not follow that pattern.
std::optional<int> jaffe_label(const std::string& file_name);

// Uncropped photos (JAFFE-style) in the same folder layouts: every image goes through
// `faces` (detection; the LARGEST face is kept; alignment if the pipeline aligns) and its
// preprocessing. An image without a face is a counted skip (field "face") naming the file; an
// image with several faces is kept (the largest) and noted (ReadReport::notes, field "faces").
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
  ImageFolderOptions folder;         // size, strict, drop/keep_contempt, split (default kTraining), image
  int frames_per_sequence = 3;       // the last N frames of each labelled sequence (the paper's 3)
  bool first_frame_neutral = false;  // also the first frame of each labelled sequence, as neutral
};

// The original CK+ distribution: <root>/cohn-kanade-images/S###/###/S###_###_########.png and
// <root>/Emotion/S###/###/S###_###_########_emotion.txt holding one float code (0 neutral,
// 1 anger, 2 contempt, 3 disgust, 4 fear, 5 happy, 6 sadness, 7 surprise). Each label file
// labels its sequence; its last frames_per_sequence frames (by file name) get that label.
// `faces`: detection (largest face) + preprocessing as everywhere else; nullptr takes the
// whole frame as the face (for pre-cropped copies). A frame without a face is a counted skip
// (several faces: the largest, noted as in read_photo_folder);
// a bad label file (not one number in 0..7, no frames) is a bad entry naming it (field
// "emotion"). Subjects from S###.
Dataset read_ckplus(const std::string& root, const FacePipeline* faces, const CkPlusOptions& options = {},
                    ReadReport* report = nullptr);

}  // namespace fervid
